"""The dependency files: every direct pin is locked with hashes, and the production image
carries only what serving and learning need."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", re.M)


def pins(path: Path) -> dict[str, str]:
    return {name.lower().replace("_", "-"): version for name, version in PIN.findall(path.read_text())}


@pytest.mark.parametrize("name", ["requirements", "requirements-demo", "requirements-dev"])
def test_every_direct_pin_is_in_its_lock_file_with_hashes(name):
    direct, locked = pins(ROOT / f"{name}.in"), pins(ROOT / f"{name}.txt")
    assert direct and {k: locked.get(k) for k in direct} == direct
    entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / f"{name}.txt").read_text().split("\n\n", 1)[-1])
    unhashed = [entry.split(" ")[0] for entry in entries if "==" in entry and "--hash=sha256:" not in entry]
    assert unhashed == []


def test_the_layers_agree_on_every_shared_version():
    runtime, demo, dev = (
        pins(ROOT / f"{name}.txt") for name in ("requirements", "requirements-demo", "requirements-dev")
    )
    assert {k: demo[k] for k in runtime} == runtime
    assert {k: dev[k] for k in demo} == demo


def test_the_production_image_installs_only_the_runtime():
    runtime = pins(ROOT / "requirements.txt")
    assert not {"scikit-learn", "scipy", "pytest", "mabwiser"} & set(runtime)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements.txt" in dockerfile
    assert "requirements-demo" not in dockerfile and "requirements-dev" not in dockerfile
