"""The client for asyncio model servers (FastAPI, aiohttp, …)."""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from mabdash_client._client import Client, error_of, headers_for
from mabdash_client._types import Decision, DeliveryReport, MabdashError


class AsyncClient:
    """:class:`Client` for asyncio code: ``await`` never waits on the network in the event loop.

    Remote decisions use ``httpx.AsyncClient``. Local decisions, reward queueing and the
    background delivery are those of :class:`Client` (threads, so they keep running whatever
    the event loop is doing): a local decision is a ``deque.popleft`` and returns at once;
    anything that could block — the first snapshot, ``flush``, ``close``, and ``reward`` with
    ``when_full="block"`` on a full queue — runs in a worker thread (``asyncio.to_thread``).

    Takes the same arguments as :class:`Client`, plus ``async_transport`` (for tests).

    Examples
    --------
    >>> async with AsyncClient("http://127.0.0.1:8000", api_key="mab_…", mode="local") as mabdash:  # doctest: +SKIP
    ...     decision = await mabdash.decide("census-income")
    ...     await mabdash.reward(decision, value=1.0)
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 5.0,
        async_transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        self._sync = Client(base_url, api_key, timeout=timeout, **options)
        self._blocking_rewards = options.get("when_full", "block") == "block"
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=headers_for(api_key), timeout=timeout, transport=async_transport
        )

    async def decide(self, experiment: str) -> Decision:
        """Which model serves one request (see :meth:`Client.decide`)."""
        local = self._sync.local
        if local is None:
            return await self._remote_decide(experiment)
        held = local.held(experiment)
        if held is None:  # the first snapshot is a network call: not in the event loop
            held = await asyncio.to_thread(local.first_snapshot, experiment)
        decision = local.take(held)
        if decision is not None:
            return decision
        try:
            decision = await self._remote_decide(experiment, held.serving_version)
        except MabdashError:
            return local.offline(held)
        local.count_remote_fallback()
        local.saw(held, decision.serving_version)
        return decision

    async def _remote_decide(self, experiment: str, min_serving_version: int = 0) -> Decision:
        try:
            response = await self._http.post(
                f"/api/v1/experiments/{quote(experiment, safe='')}/decide/",
                params={"min_serving_version": min_serving_version} if min_serving_version else None,
            )
        except httpx.TransportError as error:
            raise MabdashError(f"decide: mabdash cannot be reached: {error}") from error
        if response.status_code != 200:
            raise error_of("decide", response)
        return Decision.from_response(experiment, response.json())

    async def reward(
        self,
        decision: Decision | str,
        value: float | None = None,
        *,
        successes: int | None = None,
        trials: int | None = None,
        event_id: str | None = None,
        observed_at: datetime | None = None,
    ) -> str:
        """Queue the reward of a decision; returns its event id (see :meth:`Client.reward`)."""
        call = functools.partial(
            self._sync.reward,
            decision,
            value,
            successes=successes,
            trials=trials,
            event_id=event_id,
            observed_at=observed_at,
        )
        if self._blocking_rewards and self._sync.queue_is_full():
            return await asyncio.to_thread(call)
        return call()

    async def flush(self, timeout: float | None = None) -> DeliveryReport:
        return await asyncio.to_thread(self._sync.flush, timeout)

    async def close(self, timeout: float | None = 30.0) -> DeliveryReport:
        await self._http.aclose()
        return await asyncio.to_thread(self._sync.close, timeout)

    @property
    def stats(self) -> dict[str, int]:
        return self._sync.stats

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()
