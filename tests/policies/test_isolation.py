"""policies/ must stay a pure-numpy library: no Django, no mabdash."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_policies_loads_neither_django_nor_mabdash():
    code = (
        "import sys, policies, policies.detectors, policies.simulation\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'mabdash', 'rest_framework', 'celery'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "PYTHONPATH": str(ROOT)},
    )
    assert result.stdout.strip() == ""


def test_policies_sources_import_only_numpy_and_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"numpy", "policies", "__future__"}
    for path in (ROOT / "policies").glob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("import", "from") and not line.startswith(" "):
                top = words[1].split(".")[0]
                assert top in allowed, f"{path.name} imports {top}"
