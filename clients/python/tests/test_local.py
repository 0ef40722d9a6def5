"""Local mode against a fake server: signed draws handed out in order, snapshots that change,
and what happens when the server cannot be reached."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from mabdash_client import Client


class SnapshotServer:
    """Serves a snapshot with numbered draws; can change it, or go down."""

    def __init__(self) -> None:
        self.version = 1
        self.arm = 1
        self.down = False
        self.drawn = 0
        self.reported: list[str] = []
        self.rewards: list[dict] = []
        self.requested: list[int] = []  # decisions asked for, per snapshot with draws
        self.at_least: list[tuple[str, str | None]] = []  # (endpoint, min_serving_version) per call
        self.while_answering = lambda: None  # runs while a request for draws is in flight

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("down")
        path = request.url.path
        if not path.endswith(("/decisions/", "/rewards/")):
            self.at_least.append((path.rsplit("/", 2)[-2], request.url.params.get("min_serving_version")))
        if path.endswith("/snapshot/"):
            etag = f'"v{self.version}"'
            count = int(request.url.params.get("decisions", "0"))
            if count:
                self.requested.append(count)
            if count == 0 and request.headers.get("If-None-Match") == etag:
                return httpx.Response(304, headers={"ETag": etag})
            decisions = []
            for _ in range(count):
                self.drawn += 1
                decisions.append({"decision_id": f"v{self.version}.{self.drawn}", "arm": self.arm})
            shares = [1.0 if k == self.arm else 0.0 for k in range(3)]
            body = {
                "experiment": "exp",
                "experiment_status": "running",
                "policy_version": self.version,
                "serving_version": self.version,
                "served_by": "policy",
                "default_arm": 0,
                "arms": [
                    {"position": k, "model": {"name": f"m{k}", "version": "1"}, "status": "active", "share": shares[k]}
                    for k in range(3)
                ],
                "decisions": decisions,
                "refresh_seconds": 1.0,
                "etag": etag,
            }
            if count:
                self.while_answering()
            return httpx.Response(200, json=body, headers={"ETag": etag})
        if path.endswith("/decisions/"):
            ids = json.loads(request.content)["decisions"]
            self.reported += ids
            results = [{"index": i, "decision_id": d, "status": "accepted"} for i, d in enumerate(ids)]
            return httpx.Response(200, json={"accepted": len(ids), "duplicate": 0, "rejected": 0, "results": results})
        if path.endswith("/rewards/"):
            items = json.loads(request.content)["rewards"]
            self.rewards += items
            return httpx.Response(
                200, json={"results": [{"index": i, "status": "accepted"} for i in range(len(items))]}
            )
        self.drawn += 1  # remote decide
        decision = {
            "decision_id": f"remote.{self.drawn}",
            "arm": self.arm,
            "model": {"name": f"m{self.arm}", "version": "1"},
            "propensity": 1.0,
            "policy_version": self.version,
            "serving_version": self.version,
            "served_by": "policy",
        }
        return httpx.Response(200, json=decision)


def local_client(server: SnapshotServer, **options) -> Client:
    options = {"block_size": 10, "refresh_interval": 0.02, "max_batch_age": 0.01, **options}
    return Client("http://m.test", "mab_k", mode="local", transport=httpx.MockTransport(server), **options)


def wait(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_draws_are_served_in_order_reported_and_refilled():
    server = SnapshotServer()
    with local_client(server) as client:
        decisions = [client.decide("exp") for _ in range(30)]
        client.flush(timeout=5)
        stats = client.stats
    ids = [d.decision_id for d in decisions]
    assert ids[:10] == [f"v1.{i}" for i in range(1, 11)]  # the first block, in order
    assert len(set(ids)) == 30 and all(d.arm == 1 and d.propensity == 1.0 for d in decisions)
    assert sorted(server.reported) == sorted(i for i in ids if not i.startswith("remote."))
    assert stats["decided_local"] + stats["decided_remote_fallback"] == 30
    assert stats["decisions_recorded"] == stats["decided_local"]


def test_a_changed_snapshot_replaces_the_unused_draws():
    server = SnapshotServer()
    with local_client(server, block_size=1_000) as client:
        assert client.decide("exp").arm == 1
        server.version, server.arm = 2, 2  # e.g. a pin on arm 2
        wait(lambda: client.decide("exp").arm == 2)
        decision = client.decide("exp")
    assert decision.decision_id.startswith("v2.") and decision.policy_version == 2


def test_every_call_after_the_first_snapshot_asks_for_one_at_least_as_new():
    """A web process whose cache lags the snapshot the client holds must not answer with the
    older allocation: refreshes and remote fallbacks carry the held ``serving_version``."""
    server = SnapshotServer()
    server.version = 7
    with local_client(server, block_size=1, refresh_interval=60) as client:
        decisions = [client.decide("exp") for _ in range(3)]  # one draw in hand: the rest go remote
        client.local._refresh(client.local.held("exp"))
    assert [d.decision_id for d in decisions] == ["v7.1", "remote.2", "remote.3"]
    assert server.at_least[0] == ("snapshot", "0")  # the first snapshot: nothing held yet
    # The refresh thread, woken when the pool runs dry, may add snapshot calls of its own.
    assert [call for call in server.at_least[1:] if call[0] == "decide"] == [("decide", "7"), ("decide", "7")]
    assert {call for call in server.at_least[1:] if call[0] == "snapshot"} == {("snapshot", "7")}


def test_a_remote_answer_from_a_newer_allocation_is_never_followed_by_an_older_one():
    """A pin one web process has read reaches the client first through a remote answer: from
    then on every call asks for that version or newer, and the newer snapshot is fetched."""
    server = SnapshotServer()
    with local_client(server, block_size=1, refresh_interval=60) as client:
        assert client.decide("exp").decision_id == "v1.1"
        server.version, server.arm = 2, 2  # e.g. a pin
        remote = client.decide("exp")
        assert (remote.decision_id[:7], remote.arm, remote.serving_version) == ("remote.", 2, 2)
        wait(lambda: client.local.held("exp").snapshot["serving_version"] == 2)  # woken, not in 60 s
        later = [client.decide("exp") for _ in range(5)]
    assert {d.arm for d in later} == {2}
    after = server.at_least[server.at_least.index(("decide", "1")) + 1 :]
    assert after and all(version == "2" for _, version in after), after


def test_a_snapshot_older_than_a_remote_answer_already_seen_is_not_adopted():
    """The race behind a flaky pin: a request for draws in flight when a remote answer shows a
    newer allocation comes back with the old one — its draws must not be served."""
    server = SnapshotServer()
    with local_client(server, block_size=5, refresh_interval=60) as client:
        assert client.decide("exp").decision_id == "v1.1"
        held = client.local.held("exp")

        def remote_answer_arrives() -> None:  # the old answer is built; meanwhile a pin lands
            server.while_answering = lambda: None
            server.version, server.arm = 5, 2
            client.local.saw(held, 5)  # a remote answer drawn from serving version 5

        server.while_answering = remote_answer_arrives
        adopted: list[int] = []
        adopt = held.adopt
        held.adopt = lambda snapshot, *args: adopted.append(snapshot["serving_version"]) or adopt(snapshot, *args)
        first = [client.decide("exp") for _ in range(3)]  # the pool runs low: the thread refills
        wait(lambda: held.snapshot["serving_version"] == 5)  # asked again at once, not in 60 s
        later = [client.decide("exp") for _ in range(3)]
    assert adopted == [5]  # the answer with version 1 came after version 5 was seen: dropped
    assert [d.decision_id for d in first] == ["v1.2", "v1.3", "v1.4"]
    assert [(d.arm, d.serving_version) for d in later] == [(2, 5)] * 3
    assert all(d.decision_id.startswith("v5.") for d in later)


def test_without_the_server_decisions_come_from_the_last_snapshot_then_the_default_arm():
    server = SnapshotServer()
    client = local_client(server, block_size=2, max_staleness=0.3, retry_cap=0.01)
    first = client.decide("exp")
    server.down = True
    while (decision := client.decide("exp")).decision_id:
        pass  # the signed draws in hand are used up first
    assert (decision.served_by, decision.arm, decision.propensity) == ("offline", 1, 1.0)
    client.reward(decision, value=1.0, event_id="offline-1")
    time.sleep(0.35)
    stale = client.decide("exp")
    assert (stale.served_by, stale.arm, stale.propensity, stale.decision_id) == ("offline_default", 0, 1.0, "")
    server.down = False
    report = client.close(timeout=5)
    assert report.complete
    assert {"experiment": "exp", "arm": 1, "event_id": "offline-1", "value": 1.0} in server.rewards
    assert first.decision_id == "v1.1"


def test_local_mode_options_are_checked():
    with pytest.raises(ValueError, match="mode"):
        Client("http://m.test", "k", mode="nearby")  # type: ignore[arg-type]
    server = SnapshotServer()
    with pytest.raises(ValueError, match="block_size"):
        local_client(server, block_size=0)


def test_the_async_client_decides_locally_and_delivers_rewards():
    import asyncio

    from mabdash_client import AsyncClient

    server = SnapshotServer()

    async def handle(request: httpx.Request) -> httpx.Response:
        return server(request)

    async def model_server() -> tuple[list, dict, object]:
        async with AsyncClient(
            "http://m.test",
            "mab_k",
            mode="local",
            block_size=10,
            refresh_interval=0.02,
            max_batch_age=0.01,
            transport=httpx.MockTransport(server),
            async_transport=httpx.MockTransport(handle),
        ) as client:
            decisions = [await client.decide("exp") for _ in range(25)]
            for i, decision in enumerate(decisions):
                await client.reward(decision, value=1.0, event_id=f"a{i}")
            report = await client.flush(timeout=5)
            return decisions, client.stats, report

    decisions, stats, report = asyncio.run(model_server())
    assert report.complete and stats["accepted"] == 25
    assert sorted(r["event_id"] for r in server.rewards) == sorted(f"a{i}" for i in range(25))
    assert all(d.arm == 1 and d.decision_id for d in decisions)
    assert stats["decided_local"] + stats["decided_remote_fallback"] == 25


def test_the_async_client_in_remote_mode_raises_the_servers_refusal():
    import asyncio

    from mabdash_client import AsyncClient, MabdashError

    async def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "Not found.", "errors": {"experiment": ["no experiment 'x'"]}})

    async def call() -> MabdashError:
        async with AsyncClient("http://m.test", "mab_k", async_transport=httpx.MockTransport(refuse)) as client:
            try:
                await client.decide("x")
            except MabdashError as error:
                return error
        raise AssertionError("no error")

    error = asyncio.run(call())
    assert (error.status, error.errors) == (404, {"experiment": ["no experiment 'x'"]})


def test_a_quiet_client_asks_for_few_draws_when_the_snapshot_changes():
    server = SnapshotServer()
    with local_client(server, block_size=1_000, refresh_interval=0.05) as client:
        for _ in range(5):  # about 20 decisions a second
            client.decide("exp")
            time.sleep(0.05)
        server.version = 2  # learning moved the allocation: a new block is drawn
        for _ in range(100):  # still ~20 decisions a second while waiting for it
            time.sleep(0.05)
            if client.decide("exp").policy_version == 2:
                break
    assert server.requested[0] == 1_000  # the first block: no rate known yet
    assert 50 <= server.requested[-1] <= 400, server.requested  # then ~10 s of its ~20 decisions/s


def test_a_draw_is_labelled_by_its_own_snapshot_while_the_next_one_is_adopted():
    """The refresh thread replaces the snapshot and the draws; a decide in between must not
    pair an old draw's arm with the new snapshot's label (a pin that seems served, but is not)."""
    server = SnapshotServer()
    with local_client(server, refresh_interval=60) as client:
        first = client.decide("exp")
        experiment = client.local.held("exp")
        assert experiment is not None and first.arm == 1
        pinned = dict(experiment.snapshot, served_by="pin", policy_version=2)
        experiment.snapshot = pinned  # as adopt() could leave it for an instant: label new, draws old
        mid = client.decide("exp")
        experiment.adopt({**pinned, "decisions": [{"decision_id": "p.1", "arm": 2}]}, '"pin"', time.monotonic())
        after = client.decide("exp")
    assert (mid.arm, mid.served_by, mid.policy_version) == (1, "policy", 1)
    assert (after.decision_id, after.arm, after.served_by, after.policy_version) == ("p.1", 2, "pin", 2)
