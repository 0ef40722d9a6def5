"""What the client hands back: decisions, reward outcomes, delivery reports and errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Outcome = Literal["accepted", "duplicate", "conflict", "rejected", "undelivered"]


class Decision(NamedTuple):
    """Which model serves one request, as the server decided it (immutable).

    Attributes
    ----------
    experiment : str
        The experiment's slug.
    arm : int
        The arm's position in the experiment.
    model_name, model_version : str
        The model version to serve.
    decision_id : str
        Signed by the server; send it back with the reward ("" for a decision made offline
        in local mode).
    propensity : float
        The probability with which this arm was chosen (logged for off-policy evaluation).
    policy_version : int
        The version of the experiment's learned state the decision was drawn from.
    served_by : str
        ``policy``, ``pin``, ``weights`` or ``default`` (paused or stopped); in local mode
        also ``offline`` and ``offline_default`` (docs/CLIENT.md).
    artifact_uri : str
        Where the model version's artifact is.
    note : str or None
        The server's remark (e.g. why a paused experiment served its default arm).
    serving_version : int
        The version of the allocation the decision was drawn from (it grows with every
        change; 0 from a server that does not say).
    """

    experiment: str
    arm: int
    model_name: str
    model_version: str
    decision_id: str
    propensity: float
    policy_version: int
    served_by: str
    artifact_uri: str = ""
    note: str | None = None
    serving_version: int = 0

    @classmethod
    def from_response(cls, experiment: str, body: dict[str, Any]) -> Decision:
        model = body.get("model") or {}
        return cls(
            experiment=experiment,
            arm=int(body["arm"]),
            model_name=str(model.get("name", "")),
            model_version=str(model.get("version", "")),
            artifact_uri=str(model.get("artifact_uri", "")),
            decision_id=str(body["decision_id"]),
            propensity=float(body["propensity"]),
            policy_version=int(body["policy_version"]),
            served_by=str(body["served_by"]),
            note=body.get("note"),
            serving_version=int(body.get("serving_version", 0)),
        )


@dataclass(frozen=True)
class RewardOutcome:
    """What became of one queued reward.

    ``accepted`` and ``duplicate`` mean the server holds it (``duplicate``: an earlier try
    already delivered it); ``conflict`` means the event id was stored earlier with another
    payload (the first one stands); ``rejected`` means the server refused it (``errors``
    names the field); ``undelivered`` means the client gave up on it (``errors`` says why).
    """

    event_id: str
    outcome: Outcome
    payload: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryReport:
    """The result of :meth:`Client.flush` or :meth:`Client.close`.

    ``pending`` counts rewards still queued or in flight when the wait ended (a timeout);
    ``undelivered`` lists those the client gave up on or dropped — with ``pending == 0`` and no
    ``undelivered`` everything reached the server.
    """

    pending: int
    undelivered: list[RewardOutcome]

    @property
    def complete(self) -> bool:
        return self.pending == 0 and not self.undelivered


class MabdashError(Exception):
    """The server refused a request, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, errors: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.errors = errors or {}


class QueueFull(MabdashError):
    """The reward queue is full and the client was configured to raise (``when_full="raise"``)."""
