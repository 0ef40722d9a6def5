"""Decision ids are self-describing and unforgeable."""

from __future__ import annotations

import pytest

from mabdash.experiments import decision_ids


def make(**overrides) -> str:
    fields = {
        "experiment_id": 42,
        "position": 3,
        "policy_version": 17,
        "issued_ms": 1_764_300_000_123,
        "served_by": "pin",
        "propensity": 0.25,
    }
    fields.update(overrides)
    return decision_ids.encode(**fields)


def test_round_trip_carries_everything_a_reward_needs():
    token = decision_ids.decode(make())
    assert token == decision_ids.DecisionToken(42, 3, 17, 1_764_300_000_123, "pin", 0.25)
    assert token.issued_at.isoformat() == "2025-11-28T03:20:00.123000+00:00"


def test_ids_are_unique_for_identical_decisions():
    assert len({make() for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("nope", "not a decision id issued by this deployment"),
        ("a.b", "not a decision id issued by this deployment"),
        ("!!!.???", "not a decision id issued by this deployment"),
    ],
)
def test_garbage_is_rejected(text, reason):
    with pytest.raises(decision_ids.InvalidDecisionId, match=reason):
        decision_ids.decode(text)


def test_tampering_breaks_the_signature():
    body, signature = make().split(".")
    forged = decision_ids._b64(
        b"\x01" + decision_ids._unb64(body)[1:5] + b"\x00\x00\x00\x00" + decision_ids._unb64(body)[9:]
    )
    with pytest.raises(decision_ids.InvalidDecisionId, match="signature does not match"):
        decision_ids.decode(f"{forged}.{signature}")


def test_ids_signed_with_another_secret_are_rejected(settings):
    decision_id = make()
    settings.SECRET_KEY = "another-deployment-secret-key-0123456789-abcdefghijklmnop"
    with pytest.raises(decision_ids.InvalidDecisionId, match="signature does not match"):
        decision_ids.decode(decision_id)


def test_ids_stay_valid_during_a_key_rotation(settings):
    old_secret = settings.SECRET_KEY
    decision_id = make()
    settings.SECRET_KEY = "the-new-secret-key-after-rotation-0123456789-abcdefghijkl"
    settings.SECRET_KEY_FALLBACKS = [old_secret]
    assert decision_ids.decode(decision_id).experiment_id == 42
