"""API fuzzing with schemathesis against the OpenAPI schema of a running stack, with an
admin API key: no server errors, no response that violates the schema, invalid input
refused with a 4xx. Configuration: tests/schemathesis.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mabdash.devstack import Client, create_experiment

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    ]
)


@pytest.fixture(params=["embedded", pytest.param("production", marks=[pytest.mark.postgres, pytest.mark.redis])])
def stack(request):
    return request.getfixturevalue(f"{request.param}_stack")


def test_fuzzing_finds_no_server_errors_and_no_schema_violations(stack, tmp_path):
    stack.start_worker()
    web = stack.start_web(workers=2)
    key = stack.api_key("fuzzer", "--role", "admin", "--all-experiments")
    create_experiment(Client(web, key), "fuzz")  # something real to act on besides random ids
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [
            executable,
            "--config-file",
            str(ROOT / "tests" / "schemathesis.toml"),
            "run",
            f"{web}/api/schema/",
            "--header",
            f"Authorization: Api-Key {key}",
            "--checks",
            CHECKS,
            "--mode",
            "all",
            "--max-examples",
            "25",
            "--seed",
            "20261128",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    summary = result.stdout[-4000:]
    assert result.returncode == 0, summary
    assert "No issues found" in summary or "passed" in summary, summary
