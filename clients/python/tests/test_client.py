"""The client against a fake server (httpx.MockTransport): decisions, batching, retries, bounds."""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx
import pytest
from mabdash_client import Client, Decision, MabdashError, QueueFull, RewardSender

DECISION = {
    "decision_id": "AQAA.sig",
    "arm": 2,
    "model": {"name": "census-boosting", "version": "1", "artifact_uri": "s3://m/2"},
    "propensity": 0.25,
    "policy_version": 7,
    "served_by": "policy",
    "experiment_status": "running",
    "note": None,
}


class FakeServer:
    """Stores rewards by event id like mabdash does; can fail the next requests on demand."""

    def __init__(self) -> None:
        self.stored: dict[str, dict] = {}
        self.batches: list[int] = []
        self.failures: list[object] = []  # each: an exception to raise or a status to answer
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Api-Key mab_test"
        if request.url.path.endswith("/decide/"):
            if request.url.path != "/api/v1/experiments/census-income/decide/":
                return httpx.Response(404, json={"detail": "Not found.", "errors": {"experiment": ["unknown"]}})
            return httpx.Response(200, json=DECISION)
        with self.lock:
            if self.failures:
                failure = self.failures.pop(0)
                if isinstance(failure, Exception):
                    raise failure
                return httpx.Response(failure, headers={"Retry-After": "0"}, json={"detail": "busy"})
            items = json.loads(request.content)["rewards"]
            if len(items) > 3 and getattr(self, "limit_three", False):
                return httpx.Response(413, json={"detail": "too large"})
            self.batches.append(len(items))
            results = []
            for index, item in enumerate(items):
                event = item["event_id"]
                if "value" in item and not 0 <= item["value"] <= 1:
                    results.append(
                        {"index": index, "event_id": event, "status": "rejected", "errors": {"value": ["0 … 1"]}}
                    )
                elif event not in self.stored:
                    self.stored[event] = item
                    results.append({"index": index, "event_id": event, "status": "accepted"})
                else:
                    status = "duplicate" if self.stored[event] == item else "conflict"
                    results.append({"index": index, "event_id": event, "status": status})
            return httpx.Response(200, json={"results": results})


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def client_for(server: FakeServer, **options) -> Client:
    return Client("http://mabdash.test", "mab_test", transport=httpx.MockTransport(server), **options)


def test_decide_returns_the_servers_decision(server):
    with client_for(server) as client:
        decision = client.decide("census-income")
        with pytest.raises(MabdashError) as refused:
            client.decide("nope")
    assert decision == Decision(
        experiment="census-income",
        arm=2,
        model_name="census-boosting",
        model_version="1",
        artifact_uri="s3://m/2",
        decision_id="AQAA.sig",
        propensity=0.25,
        policy_version=7,
        served_by="policy",
    )
    assert (refused.value.status, refused.value.errors) == (404, {"experiment": ["unknown"]})
    assert str(refused.value) == "decide: HTTP 404: Not found."


def test_rewards_go_in_batches_each_once(server):
    outcomes = []
    with client_for(server, batch_size=500, max_batch_age=60, on_outcome=outcomes.append) as client:
        ids = [client.reward("d", value=i % 2, event_id=f"e{i}") for i in range(1_200)]
        report = client.flush()
        stats = client.stats
    assert report.complete
    assert sorted(server.batches) == [200, 500, 500]
    assert sorted(server.stored) == sorted(ids)
    assert [o.outcome for o in outcomes] == ["accepted"] * 1_200
    assert (stats["queued"], stats["accepted"], stats["batches"], stats["retries"]) == (1_200, 1_200, 3, 0)


def test_event_ids_made_by_the_client_are_time_ordered_uuid7(server):
    """Ids that begin with the time keep the server's idempotency index compact (CLIENT.md)."""
    with client_for(server) as client:
        first = client.reward("d", value=1)
        time.sleep(0.002)
        second = client.reward("d", value=0)
        assert client.flush().complete
    assert [uuid.UUID(i).version for i in (first, second)] == [7, 7]
    assert first < second and sorted(server.stored) == [first, second]


def test_a_lone_reward_leaves_within_the_age_bound(server):
    with client_for(server, max_batch_age=0.05) as client:
        client.reward("d", value=1, event_id="lonely")
        deadline = time.monotonic() + 5
        while "lonely" not in server.stored and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "lonely" in server.stored


def test_network_errors_and_busy_answers_are_retried_with_the_same_event_ids(server):
    server.failures = [httpx.ConnectError("refused"), 503, httpx.ReadTimeout("slow"), 429]
    with client_for(server, max_batch_age=60) as client:
        client.reward("d", value=1, event_id="a")
        client.reward("d", value=0, event_id="b")
        report = client.flush(timeout=30)
        stats = client.stats
    assert report.complete
    assert server.stored == {
        "a": {"decision_id": "d", "event_id": "a", "value": 1},
        "b": {"decision_id": "d", "event_id": "b", "value": 0},
    }
    assert (stats["retries"], stats["accepted"], stats["batches"]) == (4, 2, 1)


def test_outcomes_name_duplicates_conflicts_and_rejections(server):
    outcomes = {}
    with client_for(server, on_outcome=lambda o: outcomes.__setitem__(o.event_id, o)) as client:
        client.reward("d", value=1, event_id="x")
        client.flush()
        client.reward("d", value=1, event_id="x")
        client.reward("d", value=0, event_id="x")
        client.reward("d", value=7, event_id="y")
        client.flush()
        stats = client.stats
    assert (stats["accepted"], stats["duplicate"], stats["conflict"], stats["rejected"]) == (1, 1, 1, 1)
    assert outcomes["y"].outcome == "rejected" and outcomes["y"].errors == {"value": ["0 … 1"]}


def test_a_batch_too_large_for_the_server_is_split(server):
    server.limit_three = True
    with client_for(server, batch_size=10, max_batch_age=60) as client:
        for i in range(10):
            client.reward("d", value=1, event_id=f"e{i}")
        assert client.flush().complete
    assert sorted(server.batches) == [2, 2, 3, 3]
    assert len(server.stored) == 10


def test_close_reports_exactly_what_could_not_be_delivered(server):
    server.failures = [httpx.ConnectError("down")] * 1_000
    client = client_for(server, max_batch_age=0, retry_cap=0.05)
    client.reward("d", value=1, event_id="kept-1")
    client.reward("d", value=0, event_id="kept-2")
    report = client.close(timeout=0.5)
    assert report.pending == 0
    assert sorted(o.event_id for o in report.undelivered) == ["kept-1", "kept-2"]
    assert all(o.outcome == "undelivered" for o in report.undelivered)
    assert report.undelivered[0].errors["delivery"][0].startswith("the client was closed while retrying: ConnectError")
    assert server.stored == {}
    with pytest.raises(RuntimeError, match="closed"):
        client.reward("d", value=1)


def test_a_refused_key_is_not_retried_and_is_reported(server):
    def refuse(request):
        return httpx.Response(403, json={"detail": "This key may not post rewards."})

    with Client("http://m.test", "mab_x", transport=httpx.MockTransport(refuse)) as client:
        client.reward("d", value=1, event_id="r")
        report = client.flush(timeout=5)
    assert [o.errors for o in report.undelivered] == [{"delivery": ["HTTP 403: This key may not post rewards."]}]
    assert client.stats["retries"] == 0


def test_a_full_queue_blocks_drops_the_oldest_or_raises():
    release = threading.Event()

    def slow_post(body):
        release.wait()
        results = [{"index": i, "status": "accepted"} for i in range(len(body["rewards"]))]
        return httpx.Response(200, json={"results": results})

    dropping = RewardSender(slow_post, batch_size=1, max_age=0, max_queue=2, when_full="drop_oldest", concurrency=1)
    raising = RewardSender(slow_post, batch_size=1, max_age=0, max_queue=2, when_full="raise", concurrency=1)
    blocking = RewardSender(
        slow_post, batch_size=1, max_age=0, max_queue=2, when_full="block", block_timeout=0.1, concurrency=1
    )
    for sender in (dropping, raising, blocking):
        sender.put({"event_id": "first"})
        sender.put({"event_id": "second"})
        deadline = time.monotonic() + 5
        while sender._in_flight == 0 and time.monotonic() < deadline:  # "first" is in flight
            time.sleep(0.001)
    dropping.put({"event_id": "third"})
    with pytest.raises(QueueFull, match="is full"):
        raising.put({"event_id": "third"})
    with pytest.raises(QueueFull, match="stayed full"):
        blocking.put({"event_id": "third"})
    release.set()
    reports = {name: s.close(timeout=5) for name, s in (("drop", dropping), ("raise", raising), ("block", blocking))}
    assert [o.event_id for o in reports["drop"].undelivered] == ["second"]
    assert dropping.stats["dropped"] == 1 and dropping.stats["accepted"] == 2
    assert reports["raise"].complete and reports["block"].complete


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"value": float("nan")}, "value: must be a finite number"),
        ({"value": True}, "value: must be a finite number"),
        ({}, "value: give either value"),
        ({"value": 1, "successes": 1, "trials": 2}, "value: give either value"),
        ({"successes": 1.5, "trials": 2}, "successes: must be an integer"),
        ({"value": 1, "event_id": "é"}, "event_id: 1–128 characters"),
        ({"value": 1, "event_id": "x" * 129}, "event_id: 1–128 characters"),
    ],
)
def test_rewards_that_could_never_be_accepted_are_refused_at_once(server, arguments, message):
    with client_for(server) as client:
        with pytest.raises(ValueError, match=message):
            client.reward("d", **arguments)
        assert client.stats["queued"] == 0


@pytest.mark.parametrize(
    "option", [{"batch_size": 0}, {"batch_size": 10_001}, {"max_batch_age": -1}, {"when_full": "x"}]
)
def test_bad_options_are_refused_naming_them(server, option):
    with pytest.raises(ValueError, match=next(iter(option)).replace("max_batch_age", "max_age")):
        client_for(server, **option)
