"""Automatic rollback: run the rollback detectors of ``policies`` after every policy update.

Called by the learning cycle inside its transaction, with the experiment and its policy
state locked (the cycle's :class:`PolicySession`), right after a batch of rewards was
applied. For every active arm a detector fires
on, the rollback mode decides what happens:

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

import policies
from mabdash.control.models import ActionRequest, GuardrailState
from mabdash.control.services.actions import SYSTEM, action_apply, request_create
from mabdash.control.services.narrative import arm_labels
from mabdash.control.services.webhooks import webhook_emit
from mabdash.experiments.models import Arm, AuditEntry, Experiment, Reward
from mabdash.experiments.services.audit import audit_record
from mabdash.experiments.services.learning import LearnResult, PolicySession
from policies.detectors import Detection, PageHinkleyState, floor_rule, page_hinkley, relative_rule
from policies.guardrails import guardrail_config

ALERT_REPEAT = timedelta(hours=1)


def _window_stats(
    experiment: Experiment, arms: dict[int, Arm], positions: list[int], window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Count and mean of each arm's last ``window`` learned rewards."""
    counts = np.zeros(len(arms))
    means = np.full(len(arms), np.nan)
    for position in positions:
        values = list(
            Reward.objects.filter(arm=arms[position], applied_version__isnull=False)
            .order_by("-applied_version", "-id")
            .values_list("value", flat=True)[:window]
        )
        if values:
            counts[position] = len(values)
            means[position] = float(np.mean(values))
    return counts, means


def _detect(
    experiment: Experiment,
    policy: policies.Policy,
    arms: dict[int, Arm],
    new_rewards: dict[int, list[float]],
    config: dict[str, Any],
) -> dict[int, list[Detection]]:
    fired: dict[int, list[Detection]] = defaultdict(list)
    active = np.array([arms[p].status == Arm.Status.ACTIVE for p in range(len(arms))])
    touched = sorted(p for p in new_rewards if p in arms)
    if config["floor"]["enabled"] and touched:
        counts, means = _window_stats(experiment, arms, touched, config["window"])
        for detection in floor_rule(
            counts, means, floor=config["floor"]["threshold"], min_samples=config["floor"]["min_samples"]
        ):
            if detection.fired:
                fired[detection.arm].append(detection)
    if config["relative"]["enabled"]:
        counts, sums, sumsq = policy.evidence()
        relative = config["relative"]
        for detection in relative_rule(
            counts,
            sums,
            sumsq,
            active,
            margin=relative["margin"],
            confidence=relative["confidence"],
            min_samples=relative["min_samples"],
        ):
            if detection.fired:
                fired[detection.arm].append(detection)
    if config["page_hinkley"]["enabled"] and touched:
        state, _ = GuardrailState.objects.select_for_update().get_or_create(experiment=experiment)
        ph = config["page_hinkley"]
        for position in touched:
            before = PageHinkleyState.from_dict(state.page_hinkley.get(str(position)))
            after, detection = page_hinkley(
                new_rewards[position],
                before,
                arm=position,
                delta=ph["delta"],
                threshold=ph["threshold"],
                min_samples=ph["min_samples"],
            )
            state.page_hinkley[str(position)] = after.as_dict()
            if detection.fired:
                fired[position].append(detection)
        state.save()
    return {p: d for p, d in fired.items() if arms[p].status == Arm.Status.ACTIVE}


def _reset_change_detector(experiment: Experiment, position: int) -> None:
    state = GuardrailState.objects.filter(experiment=experiment).first()
    if state is not None and str(position) in state.page_hinkley:
        del state.page_hinkley[str(position)]
        state.save(update_fields=["page_hinkley"])


def guardrails_check(session: PolicySession, learned: LearnResult) -> list[str]:
    """Run the detectors and act on what fires; return a line per action, for logs and tests."""
    experiment = Experiment.objects.get(pk=session.experiment_id)
    policy, policy_version, new_rewards = session.policy, session.version, learned.new_rewards
    config = guardrail_config(experiment.guardrails)
    if not config["enabled"] or experiment.status != Experiment.Status.RUNNING:
        return []
    arms = {arm.position: arm for arm in Arm.objects.filter(experiment=experiment)}
    done = []
    for position, detections in sorted(_detect(experiment, policy, arms, new_rewards, config).items()):
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
            _reset_change_detector(experiment, position)
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
