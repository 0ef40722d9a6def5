"""Local decisions: what a client needs to decide in-process (docs/CLIENT.md, local mode).

A client fetches an experiment's *snapshot* — the allocation decide samples from, its arms
and models — with a block of decisions drawn from it on the server and signed like every
decision id. The client hands them out one per request (microseconds, no network) and
reports the ones it served; the server writes those to the decision ledger. So a local
decision is exactly a server decision drawn a little earlier: its arm and propensity are
the snapshot's, its id cannot be forged or moved to another experiment, and a reward for it
is attributed even before the client has reported it. Draws are independent of the request
(the strategies are not contextual), so a client may discard unused ones when the snapshot
changes without biasing anything.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from mabdash.accounts.permissions import check_experiment_access
from mabdash.experiments import decision_ids
from mabdash.experiments.services.decision_log import DecisionRow, decisions_insert
from mabdash.experiments.services.decisions import draw
from mabdash.experiments.serving import ServingEntry, serving_cache

#: Most decisions drawn or reported in one request.
MAX_BLOCK = 10_000
#: How often a client should ask again (seconds): pins and rollbacks reach it within this.
REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class Snapshot:
    entry: ServingEntry
    etag: str
    decisions: list[tuple[str, int]]


def snapshot_etag(entry: ServingEntry) -> str:
    """Changes whenever what decide samples from changes (also when an override expires)."""
    served = repr((entry.serving_version, entry.policy_version, entry.status, entry.served_by, entry.allocation))
    return f'"{entry.experiment_id}-{hashlib.blake2b(served.encode(), digest_size=8).hexdigest()}"'


def snapshot_get(slug: str, principal: Any, decisions: int, at_least: int = 0) -> Snapshot:
    """The experiment's current snapshot with ``decisions`` signed draws from it.

    ``at_least``: the ``serving_version`` of the snapshot the client holds; the answer is
    never older (a web process whose cache lags the client's last answer checks first).
    """
    entry = serving_cache.get(slug, at_least)
    check_experiment_access(principal, entry.experiment_id, slug)
    issued_ms = time.time_ns() // 1_000_000
    drawn = [draw(entry, issued_ms)[:2] for _ in range(decisions)]
    return Snapshot(entry, snapshot_etag(entry), drawn)


@dataclass(frozen=True)
class ReportOutcome:
    index: int
    decision_id: str | None
    status: str  # accepted | duplicate | rejected
    errors: dict[str, list[str]] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "decision_id": self.decision_id, "status": self.status}
        if self.errors:
            data["errors"] = self.errors
        return data


def decisions_report(slug: str, principal: Any, items: list[Any]) -> list[ReportOutcome]:
    """Write the decisions a client served to the ledger; one outcome per item, in order."""
    entry = serving_cache.get(slug)
    check_experiment_access(principal, entry.experiment_id, slug)
    outcomes: list[ReportOutcome | None] = []
    rows: list[DecisionRow] = []
    for index, item in enumerate(items):
        problem = _problem(item, entry)
        if problem:
            outcomes.append(ReportOutcome(index, None, "rejected", {"decision_id": [problem]}))
            continue
        token = decision_ids.decode(item)
        arm_id = entry.arm_id(token.position)
        assert arm_id is not None  # checked by _problem
        rows.append(
            (
                item,
                entry.experiment_id,
                arm_id,
                token.propensity,
                token.policy_version,
                token.served_by,
                token.issued_ms,
            )
        )
        outcomes.append(None)
    new = decisions_insert(rows)
    ids = iter(row[0] for row in rows)
    results: list[ReportOutcome] = []
    for index, outcome in enumerate(outcomes):
        if outcome is None:
            decision_id = next(ids)
            first = decision_id in new
            new.discard(decision_id)  # the same id twice in one report: the second is a duplicate
            outcome = ReportOutcome(index, decision_id, "accepted" if first else "duplicate")
        results.append(outcome)
    return results


def _problem(item: Any, entry: ServingEntry) -> str | None:
    if not isinstance(item, str) or not item or len(item) > 100:
        return "must be a decision id string (at most 100 characters)"
    try:
        token = decision_ids.decode(item)
    except decision_ids.InvalidDecisionId as error:
        return str(error)
    if token.experiment_id != entry.experiment_id:
        return "belongs to another experiment"
    if entry.arm_id(token.position) is None:
        return f"names arm #{token.position}, which this experiment does not have"
    return None
