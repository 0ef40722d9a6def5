"""The process supervisor of ``make run``, the e2e tests and the benchmarks: a child that dies
is started again with back-off and the event is reported; stopping ends every child; a child
started with restart=False is left down."""

from __future__ import annotations

import signal
import sys
import time

from mabdash import processes
from mabdash.devstack import wait_for
from mabdash.processes import Supervisor


def test_a_child_that_dies_is_restarted_with_backoff_and_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "BACKOFF_INITIAL_SECONDS", 0.2)
    events: list[str] = []
    supervisor = Supervisor(on_event=events.append)
    supervisor.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], log=tmp_path / "s.log")
    first = supervisor.process("sleeper").pid
    supervisor.send_signal("sleeper", signal.SIGKILL)
    wait_for(lambda: supervisor.children["sleeper"].restarts == 1, 10, "a restart")
    second = supervisor.process("sleeper").pid
    assert second != first and supervisor.process("sleeper").poll() is None
    supervisor.send_signal("sleeper", signal.SIGKILL)  # dies again at once: the wait doubles
    wait_for(lambda: supervisor.children["sleeper"].restarts == 2, 10, "a second restart")
    exits = [event for event in events if "exited" in event]
    assert exits[0].endswith("restarting in 0.2 s") and exits[1].endswith("restarting in 0.4 s")
    assert exits[0].startswith("sleeper exited with status -9 after ")
    supervisor.stop_all()
    assert supervisor.children == {}


def test_stop_ends_children_that_ignore_sigterm(tmp_path):
    supervisor = Supervisor()
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    process = supervisor.start("stubborn", [sys.executable, "-c", stubborn], log=tmp_path / "x.log")
    wait_for(lambda: "up" in (tmp_path / "x.log").read_text(), 10, "the child to start")
    started = time.monotonic()
    assert supervisor.stop("stubborn", timeout=0.5) == -signal.SIGKILL
    assert process.poll() is not None and time.monotonic() - started < 10


def test_a_helper_started_without_restart_is_left_down_and_reported(tmp_path):
    supervisor = Supervisor()
    supervisor.start("once", [sys.executable, "-c", "raise SystemExit(3)"], restart=False)
    wait_for(lambda: supervisor.exited() == {"once": 3}, 10, "the helper to finish")
    time.sleep(0.5)
    assert supervisor.children["once"].restarts == 0
    supervisor.stop_all()
