"""``make run``'s console: it tells the story (the URL, what experiments learn and serve,
every action in one sentence) rather than every periodic task, restarts a process that dies,
and Ctrl-C stops everything cleanly — no traceback, exit status 0."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import pytest
import requests

from mabdash.devstack import ROOT, free_port, wait_for

pytestmark = pytest.mark.stack


def test_the_console_tells_the_story_and_ctrl_c_stops_everything_cleanly(tmp_path):
    env = {
        **os.environ,
        "MABDASH_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "REDIS_URL": "",
        "MABDASH_LOG_LEVEL": "INFO",
        "MABDASH_SWEEP_SECONDS": "1",
    }
    env.pop("CELERY_BROKER_URL", None)

    def manage(*args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    manage("migrate", "--no-input", "-v", "0")
    manage("seed_demo")
    admin = manage("create_api_key", "ops", "--role", "admin", "--all-experiments", "--quiet").strip()
    client = (tmp_path / "var" / "demo-api-key").read_text().strip()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runstack", "--bind", f"127.0.0.1:{port}", "--web-workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # like a terminal: Ctrl-C goes to this process group
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: any(f"mabdash at {base}/" in line for line in lines), 60, "the banner")
        wait_for(lambda: _answers(base), 60, "the web server")
        rewards = [{"experiment": "census-income", "arm": i % 3, "value": i % 2} for i in range(30)]
        session = requests.Session()
        session.headers["Authorization"] = f"Api-Key {client}"
        assert session.post(f"{base}/api/v1/rewards/", json={"rewards": rewards}, timeout=10).status_code == 200
        paused = requests.post(
            f"{base}/api/v1/experiments/census-income/status/",
            json={"status": "paused", "reason": "release freeze"},
            headers={"Authorization": f"Api-Key {admin}"},
            timeout=10,
        )
        assert paused.status_code == 200, paused.text
        wait_for(
            lambda: any("census-income: Paused the experiment (api-key:ops)" in line for line in lines), 30, "the story"
        )
        wait_for(lambda: any("census-income: learned 30 rewards" in line for line in lines), 30, "the learning report")

        # A process that dies is started again by the supervisor, and the console says so.
        (first,) = _pids(lines, "worker")
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(_pids(lines, "worker")) == 2, 30, "the restart")
        assert any("worker exited with status -9" in line and "restarting in 0.5 s" in line for line in lines)

        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    reader.join(timeout=5)
    output = "".join(lines)
    assert "Traceback" not in output, output[-3000:]
    assert "stopped" in lines[-1]
    # Housekeeping stays in the logs: no periodic-task lines on the console.
    assert "Scheduler: Sending due task" not in output
    assert "Scheduler: Sending due task" in (tmp_path / "var" / "log" / "beat.log").read_text()


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/livez", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _pids(lines: list[str], name: str) -> list[int]:
    """The pids the supervisor reported starting ``name`` with, in order."""
    return [int(m.group(1)) for line in list(lines) if (m := re.search(rf"  {name} started \(pid (\d+)\)", line))]
