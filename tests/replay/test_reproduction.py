"""docs/REPRODUCTION.md's results are exactly what the saved study JSON renders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from replay.reproduction import BEGIN, END, best_model_change, replace_section

ROOT = Path(__file__).resolve().parents[2]


def test_the_document_is_rendered_from_the_committed_json():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "replay.reproduction",
            "bench/results/replay.json",
            "docs/REPRODUCTION.md",
            "--check",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_replace_section_keeps_the_prose_around_it():
    document = f"intro\n{BEGIN}\nold\n{END}\noutro\n"
    assert replace_section(document, "new\n") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
    with pytest.raises(ValueError, match="no generated section"):
        replace_section("no markers", "x")


def test_best_model_change_counts_the_seeds():
    text = best_model_change([["a", "b"], ["a", "b"], ["c", "c"]])
    assert text == (
        "The best model in hindsight changes at the drift in **2 of 3 seeds** (before → after: a → b (2); c → c (1))."
    )
