"""Automatic rollback: run the rollback detectors of ``policies`` after every policy update.

Called by the learning cycle inside its transaction, with the experiment and its policy
state locked (the cycle's :class:`PolicySession`), right after a batch of rewards was
applied. The rules (``policies.detectors``; defaults in ``policies.guardrails``) are the hard
floor, the anytime-valid relative rule, the change detector and its shortfall variant (plus
Page–Hinkley, opt-in);
their running state per arm lives in ``GuardrailState.arms`` (see ``monitors.py``). For
every active arm a rule fires on, the rollback mode decides what happens:

- the hard floor (the arm's recent mean collapsed) always rolls back at once;
- ``auto``: rolled back at once;
- ``veto_window``: proposed, and applied when the window ends unless an approver vetoes;
- ``approval``: proposed, and waits for an approver (lapses after the request TTL).

The last active arm is never rolled back: that raises a ``guardrail.alert`` instead. The
evidence stored with each rollback or proposal is everything the detectors saw, plus the
policy version.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from mabdash.control.models import ActionRequest, GuardrailState
from mabdash.control.services.actions import SYSTEM, action_apply, request_create
from mabdash.control.services.monitors import ArmMonitors
from mabdash.control.services.narrative import arm_labels
from mabdash.control.services.webhooks import webhook_emit
from mabdash.experiments.models import Arm, AuditEntry, Experiment, Reward
from mabdash.experiments.services.audit import audit_record
from mabdash.experiments.services.learning import LearnResult, PolicySession
from policies.detectors import Detection, floor_rule, others_of, relative_rule
from policies.guardrails import guardrail_config

ALERT_REPEAT = timedelta(hours=1)


def _window_stats(
    experiment: Experiment, arms: dict[int, Arm], positions: list[int], window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Count (in outcomes) and mean of each arm's last ``window`` learned rewards."""
    counts = np.zeros(len(arms))
    means = np.full(len(arms), np.nan)
    for position in positions:
        rows = list(
            Reward.objects.filter(arm=arms[position], applied_version__isnull=False)
            .order_by("-applied_version", "-id")
            .values_list("value", "trials")[:window]
        )
        if rows:
            counts[position] = sum(trials for _, trials in rows)
            means[position] = sum(value for value, _ in rows) / counts[position]
    return counts, means


def _detect(
    experiment: Experiment,
    arms: dict[int, Arm],
    new_rewards: dict[int, list[float]],
    config: dict[str, Any],
) -> dict[int, list[Detection]]:
    fired: dict[int, list[Detection]] = defaultdict(list)
    active = np.array([arms[p].status == Arm.Status.ACTIVE for p in range(len(arms))])
    touched = sorted(p for p in new_rewards if p in arms and active[p])
    if config["floor"]["enabled"] and touched:
        counts, means = _window_stats(experiment, arms, touched, config["window"])
        for detection in floor_rule(
            counts, means, floor=config["floor"]["threshold"], min_samples=config["floor"]["min_samples"]
        ):
            if detection.fired:
                fired[detection.arm].append(detection)
    state, _ = GuardrailState.objects.select_for_update().get_or_create(experiment=experiment)
    monitors = ArmMonitors(state.arms, active)
    bounded = experiment.reward_kind != Experiment.RewardKind.REAL
    for position in touched:
        rewards = new_rewards[position]
        if bounded:
            monitors.sequence_feed(position, rewards)
        if bounded and config["change"]["enabled"]:
            change = config["change"]
            detection = monitors.change_feed(
                position, rewards, threshold=change["threshold"], min_reference=change["min_reference"]
            )
            if detection.fired:
                fired[position].append(detection)
        if config["page_hinkley"]["enabled"]:
            ph = config["page_hinkley"]
            detection = monitors.page_hinkley_feed(
                position, rewards, delta=ph["delta"], threshold=ph["threshold"], min_samples=ph["min_samples"]
            )
            if detection.fired:
                fired[position].append(detection)
    if bounded and config["shortfall"]["enabled"] and touched:
        for detection in _shortfall_detect(monitors, np.flatnonzero(active).tolist(), new_rewards, config["shortfall"]):
            if detection.fired:
                fired[detection.arm].append(detection)
    if bounded and config["relative"]["enabled"] and touched:
        relative = config["relative"]
        for detection in relative_rule(
            monitors.sequences(len(arms)),
            active,
            alpha=relative["alpha"],
            margin=relative["margin"],
            min_samples=relative["min_samples"],
        ):
            if detection.fired:
                fired[detection.arm].append(detection)
    state.arms = monitors.as_dict()
    state.save(update_fields=["arms"])
    return {p: d for p, d in fired.items() if arms[p].status == Arm.Status.ACTIVE}


def _shortfall_detect(
    monitors: ArmMonitors, active: list[int], new_rewards: dict[int, list[float]], settings: dict[str, Any]
) -> list[Detection]:
    """Feed every active arm its new rewards (maybe none) and the other active arms' of this
    batch: an arm without traffic still counts what the others earn over the same period."""
    own = [new_rewards.get(p, []) for p in active]
    others_count, others_sum = others_of([len(r) for r in own], [sum(r) for r in own])
    return [
        monitors.shortfall_feed(
            position,
            rewards,
            (int(count), float(total)),
            threshold=settings["threshold"],
            min_reference=settings["min_reference"],
        )
        for position, rewards, count, total in zip(active, own, others_count, others_sum, strict=True)
    ]


def _reset_monitors(experiment: Experiment, position: int) -> None:
    """A rolled-back arm starts afresh if it is ever restored."""
    state = GuardrailState.objects.filter(experiment=experiment).first()
    if state is not None and str(position) in state.arms:
        del state.arms[str(position)]
        state.save(update_fields=["arms"])


def guardrails_check(session: PolicySession, learned: LearnResult) -> list[str]:
    """Run the detectors and act on what fires; return a line per action, for logs and tests."""
    experiment = Experiment.objects.get(pk=session.experiment_id)
    policy_version, new_rewards = session.version, learned.new_rewards
    config = guardrail_config(experiment.guardrails)
    if not config["enabled"] or experiment.status != Experiment.Status.RUNNING:
        return []
    arms = {arm.position: arm for arm in Arm.objects.filter(experiment=experiment)}
    done = []
    for position, detections in sorted(_detect(experiment, arms, new_rewards, config).items()):
        rules = sorted({d.rule for d in detections})
        hard = "floor" in rules
        evidence = {
            "policy_version": policy_version,
            "rules": rules,
            "hard_floor": hard,
            "detections": [d.as_dict() for d in detections],
        }
        reason = f"automatic rollback: {', '.join(rules)} fired on arm {position}"
        labels = arm_labels(experiment)
        because = "; ".join(d.sentence(labels) for d in detections)
        sentence = f"{labels.get(position, f'arm #{position}')} rolled back automatically: {because}"
        active = Arm.objects.filter(experiment=experiment, status=Arm.Status.ACTIVE).count()
        if active <= 1:
            recent = AuditEntry.objects.filter(
                experiment=experiment,
                kind="guardrail.alert",
                created_at__gte=timezone.now() - ALERT_REPEAT,
                evidence__arm=position,
            ).exists()
            if not recent:
                message = f"arm {position} is the last active arm; not rolled back"
                alert = {"arm": position, "message": message, **evidence}
                audit_record(
                    "guardrail.alert",
                    "system",
                    experiment=experiment,
                    reason=message,
                    evidence=alert,
                    summary=f"{labels.get(position, f'arm #{position}')} would be rolled back ({because}), but it is "
                    "the last active arm",
                )
                webhook_emit(experiment, "guardrail.alert", alert)
                done.append(f"alert arm {position}")
            continue
        pending = ActionRequest.objects.filter(
            experiment=experiment, action="rollback_arm", status=ActionRequest.Status.PENDING, params__arm=position
        ).exists()
        if hard or experiment.rollback_mode == Experiment.RollbackMode.AUTO:
            action_apply(
                experiment,
                "rollback_arm",
                {"arm": position},
                actor_name="system",
                reason=reason,
                evidence=evidence,
                session=session,
                summary=sentence,
            )
            _reset_monitors(experiment, position)
            done.append(f"rolled back arm {position}")
        elif not pending:
            mode = (
                ActionRequest.Mode.VETO_WINDOW
                if experiment.rollback_mode == Experiment.RollbackMode.VETO_WINDOW
                else ActionRequest.Mode.APPROVAL
            )
            request_create(
                experiment,
                "rollback_arm",
                {"arm": position},
                mode,
                requested_by=SYSTEM,
                reason=reason,
                evidence=evidence,
                summary=f"Roll back {labels.get(position, f'arm #{position}')}: {because}",
            )
            done.append(f"proposed rollback of arm {position}")
    return done
