"""Hostile JSON against every operation (hypothesis): deep nesting, numbers no double holds,
NaN/Infinity literals, NUL and lone surrogates, duplicate keys, wrong types at every position
of a valid body, and batches mixing valid and invalid rewards.

Every answer must be below 500, a status the schema documents for the operation, with a
body the schema describes; the valid items of a batch are stored exactly as if sent alone.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mabdash.experiments.models import Reward
from tests.openapi import OpenApi

pytestmark = pytest.mark.django_db
FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None
)


@pytest.fixture(scope="module")
def schema(tmp_path_factory, django_db_blocker) -> OpenApi:
    path = tmp_path_factory.mktemp("schema") / "schema.yml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--file", str(path))
    return OpenApi(yaml.safe_load(path.read_text()))


class Raw(str):
    """JSON text put into a body as it is (a literal no encoder would write)."""


HOSTILE_LEAVES = [
    Raw("1" * 400),
    Raw("-" + "9" * 5000),
    Raw("1e400"),
    Raw("-1e400"),
    Raw("1e-400"),
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw('"\\u0000"'),
    Raw('"a\\ud800b"'),
    Raw('"\\udfff"'),
    Raw('"' + "x" * 20_000 + '"'),
    Raw("[" * 40 + "]" * 40),
    Raw("{}"),
    Raw("[]"),
    Raw("true"),
    Raw("null"),
    Raw('""'),
    Raw('"\\u202e\\u0085"'),
    -1,
    2**63,
    -(2**63) - 1,
    0.1,
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
]


def render(value: Any, duplicate_keys: bool = False) -> str:
    """JSON text for a body that may hold Raw literals (and, optionally, a duplicated key)."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        pairs = [f"{json.dumps(key)}: {render(item, duplicate_keys)}" for key, item in value.items()]
        if duplicate_keys and value:
            key = next(iter(value))
            pairs.append(f"{json.dumps(key)}: {render(HOSTILE_LEAVES[0])}")
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(item, duplicate_keys) for item in value) + "]"
    return json.dumps(value)


hostile = st.sampled_from(HOSTILE_LEAVES) | st.integers().map(lambda n: Raw(str(n))) | st.text(max_size=50)
any_json = st.recursive(
    hostile | st.booleans() | st.none() | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def positions(value: Any, path: tuple = ()) -> list[tuple]:
    """Every position (key path) in a JSON value, for replacing one at a time."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += positions(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += positions(item, (*path, index))
    return found


def replaced(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


def valid_bodies(ctx: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """A valid body for every operation that takes one (the fuzzer breaks it position by position)."""
    return {
        ("POST", "/api/v1/models/"): {"name": "m", "version": "1", "artifact_uri": "s3://m", "metadata": {"a": [1]}},
        ("POST", "/api/v1/experiments/"): {
            "slug": "fresh",
            "name": "Fresh",
            "policy": {"kind": "ucb1", "params": {"alpha": 1.0}, "seed": 1},
            "arms": [ctx["model_id"]],
            "guardrails": {"floor": {"threshold": 0.01}},
        },
        ("POST", "/api/v1/experiments/churn/status/"): {"status": "paused", "reason": "r"},
        ("POST", "/api/v1/experiments/churn/arms/"): {"model_version": ctx["model_id"]},
        ("POST", "/api/v1/experiments/churn/decide/"): {},
        ("POST", "/api/v1/rewards/"): {"experiment": "churn", "arm": 0, "value": 1, "event_id": "e"},
        ("POST", "/api/v1/experiments/churn/actions/"): {
            "action": "weights",
            "weights": [1, 2, 3],
            "expires_in_minutes": 5,
            "reason": "r",
        },
        ("POST", "/api/v1/experiments/churn/webhooks/"): {"url": "https://h.example.com/x", "events": []},
        ("POST", "/api/v1/experiments/churn/settings/"): {
            "name": "N",
            "policy": {"kind": "epsilon_greedy", "params": {"epsilon": 0.2}},
            "guardrails": {"window": 100},
            "reason": "r",
        },
        ("POST", "/api/v1/experiments/churn/decisions/"): {"decisions": ["AQAA.x"]},
        ("POST", "/api/v1/experiments/churn/counterfactual/"): {"since": "2026-01-01T00:00:00Z"},
        ("POST", "/api/v1/requests/1/approve/"): {"reason": "r"},
        ("POST", "/api/v1/requests/1/withdraw/"): {"reason": "r"},
        ("POST", "/api/v1/requests/1/reject/"): {"reason": "r"},
    }


def send(api_client: Any, method: str, path: str, text: str) -> Any:
    return api_client.generic(method, path, text, content_type="application/json")


def check_documented(schema: OpenApi, method: str, path: str, response: Any) -> None:
    assert response.status_code < 500, (method, path, response.status_code, response.content[:300])
    body = json.loads(response.content) if response.content else None
    schema.validate(method, path, response.status_code, body)


def test_every_operation_with_a_body_is_fuzzed(schema):
    fuzzed = {(method, path) for method, path in valid_bodies({"model_id": 1})}
    templates = {
        (method, template.replace("{slug}", "churn").replace("{request_id}", "1"))
        for _, method, template in schema.operations()
        if method == "POST"
    }
    assert templates == fuzzed


@FUZZ
@given(data=st.data())
def test_hostile_values_at_every_position_of_valid_bodies(schema, api, admin_key, experiment, model_versions, data):
    client = api(admin_key)
    bodies = valid_bodies({"model_id": model_versions[0].pk})
    (method, path) = data.draw(st.sampled_from(sorted(bodies)))
    body = bodies[(method, path)]
    position = data.draw(st.sampled_from(positions(body)))
    broken = replaced(body, position, data.draw(any_json))
    text = render(broken, duplicate_keys=data.draw(st.booleans()))
    check_documented(schema, method, path, send(client, method, path, text))


@FUZZ
@given(
    text=st.one_of(
        st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
        st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
        st.integers(1, 3000).map(lambda n: "[" * n),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
        any_json.map(render),
    )
)
def test_arbitrary_bodies_never_break_an_operation(schema, api, admin_key, experiment, text):
    client = api(admin_key)
    for method, path in (
        ("POST", "/api/v1/rewards/"),
        ("POST", "/api/v1/models/"),
        ("POST", "/api/v1/experiments/churn/actions/"),
        ("POST", "/api/v1/experiments/"),
    ):
        check_documented(schema, method, path, send(client, method, path, text))


good_item = st.builds(
    lambda arm, value: {"experiment": "churn", "arm": arm, "value": value},
    st.integers(0, 2),
    st.sampled_from([0, 1]),
)
bad_item = any_json | good_item.flatmap(
    lambda item: st.sampled_from(positions(item)[1:]).flatmap(
        lambda position: st.sampled_from(HOSTILE_LEAVES).map(lambda leaf: replaced(item, position, leaf))
    )
)


@FUZZ
@given(items=st.lists(st.tuples(st.booleans(), good_item, bad_item), min_size=1, max_size=30))
def test_valid_items_of_a_batch_are_stored_as_if_sent_alone(schema, api, client_key, experiment, items):
    tag = uuid.uuid4().hex[:12]
    batch, valid = [], {}
    for index, (is_good, good, bad) in enumerate(items):
        if is_good:
            event_id = f"{tag}-{index}"
            batch.append({**good, "event_id": event_id})
            valid[event_id] = (good["arm"], float(good["value"]))
        else:
            batch.append(bad)
    response = send(api(client_key), "POST", "/api/v1/rewards/", render({"rewards": batch}))
    check_documented(schema, "POST", "/api/v1/rewards/", response)
    assert response.status_code == 200
    results = response.json()["results"]
    for index, (is_good, _, _) in enumerate(items):
        if is_good:
            assert results[index]["status"] == "accepted", results[index]
    stored = {
        event_id: (arm, value)
        for event_id, arm, value in Reward.objects.filter(event_id__startswith=tag).values_list(
            "event_id", "arm__position", "value"
        )
    }
    assert stored == valid
