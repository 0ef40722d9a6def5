"""The open-loop generator reports queueing delay instead of hiding it."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from bench.loadgen import build_request, run_load

SERVICE_SECONDS = 0.02  # the server below answers at most 50 requests/s


class _SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        time.sleep(SERVICE_SECONDS)
        body = b"{}"
        self.send_response(200 if self.path == "/ok" else 500)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")  # like gunicorn's sync workers
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    server = HTTPServer(("127.0.0.1", 0), _SlowHandler)  # one request at a time
    server.request_queue_size = 256
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


# With one connection the requests queue in the generator, waiting for it; with many they
# queue in the server's accept backlog. Either wait counts: latency runs from the time a
# request was scheduled, not from when it could be sent.
@pytest.mark.parametrize("connections", [1, 256])
def test_an_overloaded_server_shows_its_queue_in_the_latencies(slow_server, connections):
    raw = build_request("127.0.0.1", slow_server, "GET", "/ok", {})
    result = run_load("127.0.0.1", slow_server, raw, rate=100, duration=1.0, max_connections=connections)
    assert (result.sent, result.errors, result.statuses) == (100, 0, {200: 100})
    # Requests are scheduled every 10 ms (i × 10 ms) but served one at a time, 20 ms each, so
    # the k-th to finish ends no sooner than k × 20 ms: the latencies sum to at least
    # 20·(1 + … + 100) − 10·(0 + … + 99) = 51,500 ms, and the last one waits at least
    # 2,000 − 990 ms. A closed-loop tool would report the 20 ms service time instead.
    assert result.latencies_ms.mean() >= 515
    assert result.latencies_ms.max() >= 1000


def test_error_answers_are_counted_not_timed(slow_server):
    raw = build_request("127.0.0.1", slow_server, "GET", "/fail", {})
    result = run_load("127.0.0.1", slow_server, raw, rate=20, duration=0.5)
    assert (result.sent, result.errors, result.statuses, len(result.latencies_ms)) == (10, 10, {500: 10}, 0)
    assert result.summary()["p99_ms"] == float("inf")
