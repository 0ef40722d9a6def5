"""What clients may send: the specs of a reward and of a model version.

One definition each, used by the services that validate and by the API schema that
documents them (``mabdash.schema``): the schema can never promise what the server refuses.
"""

from __future__ import annotations

from mabdash.inputs import DateTime, Integer, JsonObject, Number, Spec, Text

SLUG = r"[a-z0-9][a-z0-9-]{0,62}"
SLUG_HELP = "lowercase letters, digits and hyphens, at most 63, starting with a letter or digit"
EVENT_ID = r"[A-Za-z0-9._:\-]{1,128}"
MAX_ARMS = 1000
#: Rewards per POST; larger batches get 413.
MAX_REWARD_BATCH = 10_000
#: Outcomes one count reward may summarise.
MAX_TRIALS = 10_000

REWARD = Spec(
    name="RewardInput",
    description="One reward. Give the decision_id that decide returned, or both experiment and arm; and "
    "either value, or successes and trials (binary experiments: a batch of 0/1 outcomes, e.g. the correct "
    "predictions among the last 100). A field that is null counts as not given.",
    fields={
        "event_id": Text(
            max_length=128,
            pattern=EVENT_ID,
            pattern_help="1-128 characters from A-Z a-z 0-9 . _ : -",
            nullable=True,
            description="Idempotency key, unique within the experiment; generated when absent (no idempotency).",
        ),
        "decision_id": Text(max_length=100, nullable=True, description="The decision id decide returned."),
        "experiment": Text(
            max_length=63,
            pattern=SLUG,
            pattern_help=SLUG_HELP,
            nullable=True,
            description="Experiment slug, for a reward without a decision id (with arm).",
        ),
        "arm": Integer(
            maximum=MAX_ARMS - 1, nullable=True, description="Arm position, for a reward without a decision id."
        ),
        "value": Number(
            nullable=True,
            description="The reward. Binary experiments: 0 or 1; bounded: within [0, 1]. "
            "Required unless successes and trials are given.",
        ),
        "successes": Integer(
            maximum=MAX_TRIALS,
            nullable=True,
            description="Count reward (binary experiments): how many of trials outcomes were 1. With trials.",
        ),
        "trials": Integer(
            minimum=1,
            maximum=MAX_TRIALS,
            nullable=True,
            description="Count reward: how many 0/1 outcomes it summarises (learned as that many rewards).",
        ),
        "observed_at": DateTime(nullable=True, description="When the outcome was observed (RFC 3339)."),
    },
)

MODEL_VERSION = Spec(
    name="ModelVersionInput",
    description="A trained model version to register; name and version together must be new.",
    fields={
        "name": Text(
            max_length=100,
            pattern=r"[A-Za-z0-9][A-Za-z0-9._\-]{0,99}",
            pattern_help="1-100 characters: letters, digits, . _ -, starting with a letter or digit",
        ),
        "version": Text(max_length=50, pattern=r"[!-~]{1,50}", pattern_help="1-50 printable ASCII characters"),
        "artifact_uri": Text(max_length=500, description="Where the serving side loads it from."),
        "validation_score": Number(nullable=True, description="Offline validation score (validation strategy)."),
        "metadata": JsonObject(max_bytes=65_536, nullable=True, description="Free-form; at most 64 KiB."),
    },
    required=frozenset({"name", "version", "artifact_uri"}),
)
