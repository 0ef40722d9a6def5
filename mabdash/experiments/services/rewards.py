"""Recording rewards: validate, attribute, insert idempotently, then request learning.

Each item gets an outcome: ``accepted`` (stored now), ``duplicate`` (this event id was
already stored with the same payload), ``conflict`` (stored earlier with a different
payload — the earlier one stands) or ``rejected`` (with the field and the reason). Bad
items never cost good ones. Everything accepted is committed before the caller answers;
learning is requested after the commit and never blocks or fails the request.

Validation is plain Python rather than a DRF serializer per item: a batch holds up to
10,000 items and per-item serializers would cost more than everything else together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from mabdash.accounts.authentication import KeyPrincipal
from mabdash.errors import NotFound
from mabdash.experiments import decision_ids
from mabdash.experiments.event_ids import time_ordered_id
from mabdash.experiments.inputs import REWARD
from mabdash.experiments.models import Experiment, Reward, RewardKey
from mabdash.experiments.services.scheduling import learning_request
from mabdash.experiments.serving import ServingEntry, serving_cache
from mabdash.inputs import first_problem


@dataclass
class RewardOutcome:
    """The outcome of one item."""

    index: int
    status: str
    event_id: str | None = None
    errors: dict[str, list[str]] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "event_id": self.event_id, "status": self.status}
        if self.errors:
            data["errors"] = self.errors
        return data


@dataclass
class _Item:
    index: int
    event_id: str
    generated_id: bool
    value: float
    trials: int = 1
    counted: bool = False  # given as successes and trials
    decision_id: str | None = None
    token: decision_ids.DecisionToken | None = None
    slug: str | None = None
    position: int | None = None
    observed_at: datetime | None = None
    experiment: ServingEntry | None = None
    arm_id: int | None = None
    learn: bool = True
    decided_at: datetime | None = None


def _reject(index: int, event_id: Any, field_name: str, message: str) -> RewardOutcome:
    return RewardOutcome(
        index=index,
        status="rejected",
        event_id=event_id if isinstance(event_id, str) else None,
        errors={field_name: [message]},
    )


def _parse(index: int, raw: Any) -> _Item | RewardOutcome:
    """Check one item against the reward spec (no database)."""
    clean, errors = REWARD.check(raw, whole="reward")
    event_id = clean.get("event_id")
    if errors:
        field_name, message = first_problem(errors)
        return _reject(index, event_id, field_name, message)
    amount = _amount(clean)
    if isinstance(amount, tuple) and isinstance(amount[0], str):
        return _reject(index, event_id, amount[0], str(amount[1]))
    value, trials = amount
    item = _Item(
        index=index,
        event_id=event_id or time_ordered_id(),
        generated_id=event_id is None,
        value=float(value),
        trials=int(trials),
        counted=clean.get("trials") is not None,
        slug=clean.get("experiment"),
        position=clean.get("arm"),
        observed_at=clean.get("observed_at"),
    )
    decision_id = clean.get("decision_id")
    if decision_id is not None:
        try:
            item.token = decision_ids.decode(decision_id)
        except decision_ids.InvalidDecisionId as error:
            return _reject(index, event_id, "decision_id", str(error))
        item.decision_id = decision_id
    if item.token is None and (item.slug is None or item.position is None):
        return _reject(index, event_id, "decision_id", "give a decision_id, or both experiment and arm")
    return item


def _amount(clean: dict[str, Any]) -> tuple[float, int] | tuple[str, str]:
    """``(value, trials)`` of a checked item — a plain reward is one trial; a count reward's
    value is its number of successes — or ``(field, problem)``."""
    value, successes, trials = clean.get("value"), clean.get("successes"), clean.get("trials")
    if value is not None:
        if successes is not None or trials is not None:
            field_name = "successes" if successes is not None else "trials"
            return field_name, "give either value, or successes and trials, not both"
        return value, 1
    if successes is None and trials is None:
        return "value", "required (or successes and trials)"
    if trials is None:
        return "trials", "required with successes"
    if successes is None:
        return "successes", "required with trials"
    if successes > trials:
        return "successes", f"must be at most trials ({trials})"
    return float(successes), trials


def _value_error(kind: str, value: float) -> str | None:
    if kind == Experiment.RewardKind.BINARY and value not in (0.0, 1.0):
        return "must be 0 or 1 for this experiment (binary rewards)"
    if kind == Experiment.RewardKind.BOUNDED and not 0.0 <= value <= 1.0:
        return "must be in [0, 1] for this experiment (bounded rewards)"
    return None


def _attribute(items: list[_Item], principal: Any, now: datetime) -> dict[int, RewardOutcome]:
    """Resolve experiments and arms, check scope, range and lateness; return rejections.

    Experiments and arms come from the web process's serving cache (no query on the hot
    path); an arm the cache does not know yet (added a moment ago) reloads the entry.
    """
    by_id: dict[int, ServingEntry | None] = {}
    by_slug: dict[str, ServingEntry | None] = {}

    def lookup(
        table: dict[Any, ServingEntry | None], key: Any, load: Callable[[Any], ServingEntry]
    ) -> ServingEntry | None:
        if key not in table:
            try:
                table[key] = load(key)
            except NotFound:
                table[key] = None
        return table[key]

    rejected: dict[int, RewardOutcome] = {}

    def reject(item: _Item, field: str, message: str) -> None:
        rejected[item.index] = _reject(item.index, item.event_id, field, message)

    for item in items:
        if item.token:
            experiment = lookup(by_id, item.token.experiment_id, serving_cache.get_by_id)
            if experiment is None:
                reject(item, "decision_id", "not a decision of an experiment this API key may use")
                continue
            if item.slug is not None and item.slug != experiment.slug:
                reject(item, "experiment", f"does not match the decision's experiment {experiment.slug!r}")
                continue
            if item.position is not None and item.position != item.token.position:
                reject(item, "arm", f"does not match the decision's arm {item.token.position}")
                continue
            position = item.token.position
            item.decided_at = item.token.issued_at
            item.learn = now - item.decided_at <= timedelta(seconds=experiment.reward_window_seconds)
        else:
            experiment = lookup(by_slug, item.slug, serving_cache.get)
            if experiment is None:
                reject(item, "experiment", f"no experiment {item.slug!r}")
                continue
            if item.position is None:  # _parse refuses a slug without an arm; never reached
                continue
            position = item.position
        if isinstance(principal, KeyPrincipal) and not principal.allows_experiment(experiment.pk):
            # The same answers as for an experiment that does not exist: nothing leaks.
            if item.token:
                reject(item, "decision_id", "not a decision of an experiment this API key may use")
            else:
                reject(item, "experiment", f"no experiment {item.slug!r}")
            continue
        arm_id = experiment.arm_id(position)
        if arm_id is None and position < 10_000:
            experiment = serving_cache.reload(experiment.slug)
            by_id[experiment.pk] = by_slug[experiment.slug] = experiment
            arm_id = experiment.arm_id(position)
        if arm_id is None:
            reject(item, "arm", f"experiment has no arm {position}")
            continue
        if item.counted and experiment.reward_kind != Experiment.RewardKind.BINARY:
            reject(item, "trials", "count rewards (successes and trials) are for binary experiments")
            continue
        problem = None if item.counted else _value_error(experiment.reward_kind, item.value)
        if problem:
            reject(item, "value", problem)
            continue
        item.experiment, item.arm_id = experiment, arm_id
    return rejected


_COLUMNS = "event_id, experiment_id, arm_id, decision_id, value, trials, decided_at, observed_at, received_at, learn"
_KEYS = RewardKey._meta.db_table
#: Event ids are unique per experiment: two experiments may use the same id independently.
#: The key table holds that uniqueness (the reward table is partitioned by day on PostgreSQL).
_CLAIM_KEYS = "ON CONFLICT (experiment_id, event_id) DO NOTHING RETURNING experiment_id, event_id"

Key = tuple[int, str]


def _key(item: _Item) -> Key:
    assert item.experiment is not None
    return item.experiment.pk, item.event_id


def _insert(items: list[_Item], now: datetime) -> set[Key]:
    """Insert, skipping (experiment, event id) pairs already stored; return the pairs this call inserted."""
    if connection.vendor == "postgresql":
        return _insert_postgresql(items, now)
    return _insert_sqlite(items, now)


def _insert_sqlite(items: list[_Item], now: datetime) -> set[Key]:
    """Claim the keys, then store the rewards whose key this call claimed (in the caller's transaction)."""
    table = Reward._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    claimed: set[Key] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(items), 2500):  # 10 parameters a row, under SQLite's 32,766
            chunk = items[start : start + 2500]
            keys = [value for i in chunk for value in (_key(i)[0], i.event_id, adapt(now))]
            placeholders = ", ".join(["(%s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {_KEYS} (experiment_id, event_id, received_at) VALUES {placeholders} {_CLAIM_KEYS}", keys
            )
            mine = {(row[0], row[1]) for row in cursor.fetchall()}
            claimed |= mine
            rows = [i for i in chunk if _key(i) in mine]
            if not rows:
                continue
            placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
            params: list[Any] = []
            for i in rows:
                params += [
                    i.event_id,
                    _key(i)[0],
                    i.arm_id,
                    i.decision_id,
                    i.value,
                    i.trials,
                    adapt(i.decided_at),
                    adapt(i.observed_at),
                    adapt(now),
                    i.learn,
                ]
            cursor.execute(f"INSERT INTO {table} ({_COLUMNS}) VALUES {placeholders}", params)
    return claimed


def _insert_postgresql(items: list[_Item], now: datetime) -> set[Key]:
    """One statement for the whole batch: arrays in, the inserted keys out.

    The arrays travel as binary parameters of a server-side-bound statement: Django's
    cursor binds on the client, quoting every element of every array as text, which cost a
    quarter of a 1,000-item batch's time in Python.
    """
    table = Reward._meta.db_table
    # Django's error mapping still applies: a lost database is an OperationalError (a 503).
    with connection.wrap_database_errors:
        connection.ensure_connection()
        return _insert_postgresql_statement(table, items, now)


def _insert_postgresql_statement(table: str, items: list[_Item], now: datetime) -> set[Key]:
    """Claim the keys and store the rewards of the claimed keys in one statement, so one
    commits exactly when the other does. A key another batch is inserting concurrently makes
    this statement wait for that batch's outcome, then skip the key if it was stored."""
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            "WITH t AS (SELECT * FROM unnest(%b::text[], %b::bigint[], %b::bigint[], %b::text[], %b::float8[], "
            "%b::int[], %b::timestamptz[], %b::timestamptz[], %b::bool[]) AS t(e, x, a, d, v, n, da, o, l)), "
            f"k AS (INSERT INTO {_KEYS} (experiment_id, event_id, received_at) SELECT x, e, %b::timestamptz FROM t "
            f"{_CLAIM_KEYS}) "
            f"INSERT INTO {table} ({_COLUMNS}) SELECT e, x, a, d, v, n, da, o, %b::timestamptz, l "
            "FROM t JOIN k ON k.experiment_id = t.x AND k.event_id = t.e RETURNING experiment_id, event_id",
            [
                [i.event_id for i in items],
                [_key(i)[0] for i in items],
                [i.arm_id for i in items],
                [i.decision_id for i in items],
                [i.value for i in items],
                [i.trials for i in items],
                [i.decided_at for i in items],
                [i.observed_at for i in items],
                [i.learn for i in items],
                now,
                now,
            ],
        )
        return {(row[0], row[1]) for row in cursor.fetchall()}


def _classify_existing(items: list[_Item]) -> dict[int, RewardOutcome]:
    """Outcomes for items whose (experiment, event id) was already stored: duplicate or conflict.

    The keys give the day each stored reward was received, so the lookup reads only the
    partitions of those days, through the (experiment, received_at) index.
    """
    wanted = {_key(item) for item in items}
    stored: dict[Key, tuple[Any, ...]] = {}
    for experiment_id in {key[0] for key in wanted}:
        event_ids = [event_id for key_experiment, event_id in wanted if key_experiment == experiment_id]
        received = set(
            RewardKey.objects.filter(experiment_id=experiment_id, event_id__in=event_ids).values_list(
                "received_at", flat=True
            )
        )
        rows = Reward.objects.filter(
            experiment_id=experiment_id, received_at__in=received, event_id__in=event_ids
        ).values_list("event_id", "arm_id", "decision_id", "value", "trials")
        stored.update(((experiment_id, row[0]), row[1:]) for row in rows)
    outcomes = {}
    for item in items:
        if stored.get(_key(item)) == (item.arm_id, item.decision_id, item.value, item.trials):
            outcomes[item.index] = RewardOutcome(item.index, "duplicate", item.event_id)
        else:
            outcomes[item.index] = RewardOutcome(
                item.index,
                "conflict",
                item.event_id,
                {"event_id": ["already recorded for this experiment with a different payload"]},
            )
    return outcomes


def _batch_transaction() -> contextlib.AbstractContextManager[Any]:
    """What makes the insert all-or-nothing.

    On PostgreSQL ``_insert`` is one statement (keys and rewards), atomic by itself: in autocommit it is
    committed (durably) when it returns, saving the BEGIN and COMMIT round trips. An item
    that conflicts with an uncommitted insert of the same event id waits for it, so the
    lookup of stored rows that follows sees every conflicting row. The chunked inserts
    elsewhere need a transaction. ``on_commit`` hooks run at once in autocommit, or when an
    enclosing transaction commits.
    """
    return contextlib.nullcontext() if connection.vendor == "postgresql" else transaction.atomic()


def rewards_record(raw_items: list[Any], principal: Any) -> list[RewardOutcome]:
    """Record a batch of rewards; one outcome per item, in input order.

    Accepted rewards are committed when this returns. Learning is requested on commit.
    """
    now = timezone.now()
    outcomes: dict[int, RewardOutcome] = {}
    items: list[_Item] = []
    for index, raw in enumerate(raw_items):
        parsed = _parse(index, raw)
        if isinstance(parsed, RewardOutcome):
            outcomes[index] = parsed
        else:
            items.append(parsed)
    if items:
        outcomes.update(_attribute(items, principal, now))
        items = [item for item in items if item.index not in outcomes]
    # The same (experiment, event id) twice in one batch: the first occurrence is recorded.
    first: dict[Key, _Item] = {}
    repeats: list[_Item] = []
    for item in items:
        if _key(item) in first:
            repeats.append(item)
        else:
            first[_key(item)] = item
    unique = list(first.values())
    if unique:
        with _batch_transaction():
            inserted = _insert(unique, now)
            existing = [item for item in unique if _key(item) not in inserted]
            outcomes.update(_classify_existing(existing + repeats))
            learned = {_key(item)[0] for item in unique if _key(item) in inserted and item.learn}
            for experiment_id in sorted(learned):
                transaction.on_commit(partial(learning_request, experiment_id))
        for item in unique:
            if _key(item) in inserted:
                outcomes[item.index] = RewardOutcome(item.index, "accepted", item.event_id)
    return [outcomes[index] for index in range(len(raw_items))]
