"""What a client may send to ask for a counterfactual report (one definition: parser and schema)."""

from __future__ import annotations

from mabdash.inputs import DateTime, Spec

REPORT_REQUEST = Spec(
    name="CounterfactualRequest",
    description="Ask for a fresh counterfactual report; the body may be empty ({}).",
    fields={
        "since": DateTime(
            nullable=True, description="Evaluate the decisions served from this time on (RFC 3339); default: all."
        ),
    },
)
