"""The client a model server keeps for its lifetime."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx

from mabdash_client._ids import time_ordered_id
from mabdash_client._local import LocalDecider
from mabdash_client._sender import RewardSender, WhenFull
from mabdash_client._types import Decision, DeliveryReport, MabdashError, RewardOutcome

logger = logging.getLogger("mabdash_client")

#: What the server accepts as an event id (docs/API.md).
EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
USER_AGENT = "mabdash-client/0.1.0"


class Client:
    """Decide which model serves a request and report rewards, over the REST API.

    Rewards are queued and sent in batches by a background thread; :meth:`flush` waits for
    delivery and :meth:`close` (or leaving a ``with`` block) delivers what is left and says
    exactly what could not be delivered. Thread-safe: one client serves every thread of a
    model server.

    Parameters
    ----------
    mode : {"remote", "local"}
        ``remote``: each decision is one call to the decide endpoint. ``local``: decisions are
        handed out in-process from signed blocks drawn by the server, refreshed every
        ``refresh_interval`` seconds (docs/CLIENT.md).
    base_url : str
        Where mabdash answers, e.g. ``"https://mabdash.example.com"``.
    api_key : str
        A key scoped to the experiments this server decides for (``manage.py create_api_key``).
    timeout : float
        Seconds for each HTTP request.
    batch_size, max_batch_age, max_queue, when_full, block_timeout, retry_cap, concurrency, on_outcome
        How rewards are batched, bounded and retried; see :class:`~mabdash_client._sender.RewardSender`.
    transport : httpx.BaseTransport, optional
        For tests (``httpx.MockTransport``) or custom networking.

    Examples
    --------
    >>> with Client("http://127.0.0.1:8000", api_key="mab_…") as mabdash:  # doctest: +SKIP
    ...     decision = mabdash.decide("census-income")
    ...     mabdash.reward(decision, value=1.0)
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 5.0,
        batch_size: int = 500,
        max_batch_age: float = 0.2,
        max_queue: int = 100_000,
        when_full: WhenFull = "block",
        block_timeout: float | None = None,
        retry_cap: float = 30.0,
        concurrency: int = 2,
        on_outcome: Callable[[RewardOutcome], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        mode: Literal["remote", "local"] = "remote",
        block_size: int = 1_000,
        refresh_interval: float = 1.0,
        max_staleness: float = 300.0,
        draw_max_age: float = 10.0,
        pool_seconds: float = 10.0,
    ) -> None:
        if mode not in ("remote", "local"):
            raise ValueError(f"mode: must be 'remote' or 'local', got {mode!r}")
        if not api_key:
            raise ValueError("api_key: required")
        headers = headers_for(api_key)
        # Two connection pools: a slow reward batch never holds up a decision.
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)
        self._rewards_http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)
        self._sender = RewardSender(
            lambda body: self._rewards_http.post("/api/v1/rewards/", json=body),
            batch_size=batch_size,
            max_age=max_batch_age,
            max_queue=max_queue,
            when_full=when_full,
            block_timeout=block_timeout,
            retry_cap=retry_cap,
            on_outcome=on_outcome,
            concurrency=concurrency,
        )
        self.local: LocalDecider | None = None
        if mode == "local":
            self._snapshots_http = httpx.Client(
                base_url=base_url, headers=headers, timeout=timeout, transport=transport
            )
            self.local = LocalDecider(
                self._snapshots_http,
                self._decision_reporter,
                block_size=block_size,
                refresh_interval=refresh_interval,
                max_staleness=max_staleness,
                draw_max_age=draw_max_age,
                remote_decide=self._remote_decide,
                pool_seconds=pool_seconds,
            )

    def _decision_reporter(self, slug: str) -> RewardSender:
        path = f"/api/v1/experiments/{quote(slug, safe='')}/decisions/"
        return RewardSender(
            lambda body: self._rewards_http.post(path, json={"decisions": [d["decision_id"] for d in body["rewards"]]}),
            max_age=0.5,
            id_key="decision_id",
            payload_of=lambda decision_id: {"decision_id": decision_id},
            concurrency=1,
        )

    def decide(self, experiment: str) -> Decision:
        """Which model serves one request.

        In local mode, from the experiment's latest snapshot (in-process; the first call
        fetches it). In remote mode, or when local mode has no signed draw at hand, the
        server's decide endpoint.

        Raises
        ------
        MabdashError
            When the server refuses (``status`` and ``errors`` say why), or, in remote mode,
            cannot be reached.
        """
        if self.local is not None:
            return self.local.decide(experiment)
        return self._remote_decide(experiment)

    def _remote_decide(self, experiment: str, min_serving_version: int = 0) -> Decision:
        """Ask the server which model serves one request (from a snapshot at least as new as
        ``min_serving_version``).

        Raises
        ------
        MabdashError
            When the server refuses (``status`` and ``errors`` say why) or cannot be reached.
        """
        try:
            response = self._http.post(
                f"/api/v1/experiments/{quote(experiment, safe='')}/decide/",
                params={"min_serving_version": min_serving_version} if min_serving_version else None,
            )
        except httpx.TransportError as error:
            raise MabdashError(f"decide: mabdash cannot be reached: {error}") from error
        if response.status_code != 200:
            raise error_of("decide", response)
        return Decision.from_response(experiment, response.json())

    def reward(
        self,
        decision: Decision | str,
        value: float | None = None,
        *,
        successes: int | None = None,
        trials: int | None = None,
        event_id: str | None = None,
        observed_at: datetime | None = None,
    ) -> str:
        """Queue the reward of a decision; returns its event id.

        Give ``value`` (``binary``: 0 or 1; ``bounded``: in [0, 1]; ``real``: any finite
        number), or ``successes`` out of ``trials`` for a count. ``event_id`` (generated when
        left out) makes retries idempotent: the server stores each event id once.

        Raises
        ------
        ValueError
            When the reward could never be accepted (naming the field), before it is queued.
        QueueFull
            When the queue is full and the client was configured to raise.
        """
        if isinstance(decision, Decision) and not decision.decision_id:  # decided offline: no signed id
            payload: dict[str, Any] = {"experiment": decision.experiment, "arm": decision.arm}
        else:
            decision_id = decision.decision_id if isinstance(decision, Decision) else decision
            if not isinstance(decision_id, str) or not decision_id:
                raise ValueError("decision: a Decision or a decision id string is required")
            payload = {"decision_id": decision_id}
        payload["event_id"] = event_id or time_ordered_id()
        if not EVENT_ID.fullmatch(payload["event_id"]):
            raise ValueError("event_id: 1–128 characters of A-Z a-z 0-9 . _ : -")
        if (value is None) == (successes is None and trials is None):
            raise ValueError("value: give either value, or successes and trials")
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"value: must be a finite number, got {value!r}")
            payload["value"] = value
        else:
            for name, count in (("successes", successes), ("trials", trials)):
                if isinstance(count, bool) or not isinstance(count, int):
                    raise ValueError(f"{name}: must be an integer, got {count!r}")
            payload["successes"], payload["trials"] = successes, trials
        if observed_at is not None:
            if observed_at.tzinfo is None:
                raise ValueError("observed_at: needs a time zone")
            payload["observed_at"] = observed_at.isoformat()
        self._sender.put(payload)
        return str(payload["event_id"])

    def queue_is_full(self) -> bool:
        """Whether :meth:`reward` would have to wait for room now."""
        return self._sender.is_full()

    def flush(self, timeout: float | None = None) -> DeliveryReport:
        """Send every queued reward (and, in local mode, served decision) now and wait until
        delivered or ``timeout`` seconds pass. The report is about rewards."""
        if self.local is not None:
            self.local.flush(timeout)
        return self._sender.flush(timeout)

    def close(self, timeout: float | None = 30.0) -> DeliveryReport:
        """Deliver what is queued (at most ``timeout`` seconds), stop, and report what was not."""
        if self.local is not None:
            for report in self.local.close(timeout):
                for outcome in report.undelivered:
                    logger.error("mabdash: served decision %s not recorded: %s", outcome.event_id, outcome.errors)
            self._snapshots_http.close()
        report = self._sender.close(timeout)
        self._http.close()
        self._rewards_http.close()
        return report

    @property
    def stats(self) -> dict[str, int]:
        """Counters of rewards (queued, batches, accepted, duplicate, conflict, rejected,
        undelivered, dropped, retries) and, in local mode, of decisions: ``decided_local``,
        ``decided_remote_fallback``, ``decided_offline``, ``decided_offline_default``,
        ``snapshot_refreshes``, ``decisions_recorded`` and ``decisions_unrecorded``."""
        stats = dict(self._sender.stats)
        if self.local is not None:
            local = self.local.stats
            stats.update(
                decided_local=local["local"],
                decided_remote_fallback=local["remote_fallback"],
                decided_offline=local["offline"],
                decided_offline_default=local["offline_default"],
                snapshot_refreshes=local["refreshes"],
            )
            reporters = self.local.reporter_stats()
            stats["decisions_recorded"] = sum(r["accepted"] + r["duplicate"] for r in reporters)
            stats["decisions_unrecorded"] = sum(r["rejected"] + r["undelivered"] for r in reporters)
        return stats

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def headers_for(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Api-Key {api_key}", "User-Agent": USER_AGENT, "Accept": "application/json"}


def error_of(operation: str, response: httpx.Response) -> MabdashError:
    """The error for a refusal, with the server's detail and field errors."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    errors = body.get("errors") if isinstance(body, dict) else None
    return MabdashError(
        f"{operation}: HTTP {response.status_code}: {detail or response.reason_phrase}", response.status_code, errors
    )
