"""API fuzzing with schemathesis against the OpenAPI schema of a running stack, with an
admin API key: no server errors, no response that violates the schema, invalid input
refused with a 4xx. Configuration: tests/schemathesis.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mabdash.devstack import Client, create_experiment

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
        "ignored_auth",
        "use_after_free",
        "ensure_resource_availability",
    ]
)


@pytest.fixture(params=["embedded", pytest.param("production", marks=[pytest.mark.postgres, pytest.mark.redis])])
def stack(request):
    return request.getfixturevalue(f"{request.param}_stack")


def test_fuzzing_finds_no_server_errors_and_no_schema_violations(stack, tmp_path):
    stack.start_worker()
    web = stack.start_web(workers=2)
    key = stack.api_key("fuzzer", "--role", "admin", "--all-experiments")
    create_experiment(Client(web, key), "fuzz")  # something real to act on besides random ids
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [
            executable,
            "--config-file",
            str(ROOT / "tests" / "schemathesis.toml"),
            "run",
            f"{web}/api/schema/",
            "--header",
            f"Authorization: Api-Key {key}",
            "--checks",
            CHECKS,
            "--mode",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            "25",
            "--seed",
            "20261128",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    summary = result.stdout[-4000:]
    assert result.returncode == 0, summary
    assert "No issues found" in summary or "passed" in summary, summary
    assert "Stateful" in result.stdout, "the stateful phase did not run: " + summary


def raw_request(url: str, request: bytes) -> tuple[int, dict, bytes]:
    """Send bytes as they are (chunked bodies, hostile request lines) and read the answer."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def test_the_real_server_reads_chunked_bodies_and_answers_every_error_in_json(embedded_stack):
    import json as jsonlib

    stack = embedded_stack
    stack.start_worker()
    web = stack.start_web()
    create_experiment(Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments")), "raw")
    key = stack.api_key("server", "--experiment", "raw")
    body = b'{"experiment": "raw", "arm": 1, "value": 1, "event_id": "chunked-1"}'
    chunked = (
        b"POST /api/v1/rewards/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + f"Authorization: Api-Key {key}\r\n".encode()
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:10], body[10:]))
        + b"0\r\n\r\n"
    )
    status, _, answer = raw_request(web, chunked)
    assert (status, jsonlib.loads(answer)["status"]) == (201, "accepted")  # read whole, not as empty
    assert Client(web, key).state("raw")["arms"][1]["model"]["name"] == "raw-model"

    long_target = (
        b"GET /api/v1/experiments/?q=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    status, headers, answer = raw_request(web, long_target)
    assert status == 414 and headers["Content-Type"] == "application/json"
    assert jsonlib.loads(answer) == {"detail": "The request target is longer than 4096 characters.", "errors": {}}

    nul = f"POST /api/v1/experiments/x%00/decide/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Api-Key {key}\r\nContent-Length: 0\r\n\r\n"
    status, headers, answer = raw_request(web, nul.encode())
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert jsonlib.loads(answer)["detail"] == "No API endpoint at /api/v1/experiments/x\x00/decide/."
