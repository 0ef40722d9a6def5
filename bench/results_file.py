"""Writing a benchmark's results, stamped with when and where they were measured.

Every ``python -m bench.<name> --json PATH`` writes through ``results_write``, so
``bench.summary`` can say under each section of docs/BENCHMARKS.md which run produced it —
benchmarks are often re-run one at a time, on different days and machines.
"""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import date
from pathlib import Path
from typing import Any


def machine() -> str:
    """Cores, CPU model, kernel and Python of this machine, in one line."""
    cpu = subprocess.run(
        ["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True
    ).stdout.strip()
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{cores} × {cpu or platform.processor()}, Linux {platform.release()}, Python {platform.python_version()}"


def results_write(path: str | Path, results: dict[str, Any]) -> None:
    """Write ``results`` as JSON with a ``measured`` stamp (today's date, this machine)."""
    stamped = {**results, "measured": {"date": date.today().isoformat(), "machine": machine()}}
    Path(path).write_text(json.dumps(stamped, indent=1, default=str))
