"""The processes of a mabdash deployment, and the small supervisor that runs them.

The one home of the web, worker and beat command lines. ``manage.py runstack`` (``make
run``), the end-to-end tests and the benchmarks all start processes through a
:class:`Supervisor`: each child runs in its own process group (a terminal's Ctrl-C reaches
only the supervisor, which then stops the children in order, without tracebacks), writes
to its own log file, and — unless it was started with ``restart=False`` — is started again
with exponential back-off when it exits on its own. Production deployments get the same
behaviour from their orchestrator (``restart: unless-stopped`` in docker-compose.yml).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

#: First wait before restarting a child that exited; doubles per quick exit up to the cap.
BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
#: A child that ran this long before exiting is restarted after the initial wait again.
HEALTHY_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


def web_command(python: str, bind: str, workers: int, config: str = "gunicorn.conf.py") -> list[str]:
    """gunicorn serving the Django app (``config`` sets worker class, timeouts, metrics)."""
    return [python, "-m", "gunicorn", "mabdash.wsgi", "--config", config, "--bind", bind, "--workers", str(workers)]


def worker_command(
    python: str, hostname: str, *, pool: str = "prefork", concurrency: int = 1, queues: str = "celery"
) -> list[str]:
    """A Celery worker: the default queue (learning cycles, webhook deliveries), or
    ``queues="evaluation"`` for the counterfactual reports' own worker."""
    command = [python, "-m", "celery", "-A", "mabdash", "worker", "--loglevel", "INFO", "--hostname", hostname]
    command += ["--pool", pool, "--without-mingle", "--without-gossip", "--queues", queues]
    if pool == "prefork":
        command += ["--concurrency", str(concurrency)]
    return command


def beat_command(python: str, schedule: str) -> list[str]:
    """Celery beat (sweeps, expiries, snapshots); exactly one per deployment."""
    return [python, "-m", "celery", "-A", "mabdash", "beat", "--loglevel", "INFO", "--schedule", schedule]


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str] | None
    cwd: str | None
    log: Path | None
    restart: bool
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 0.0
    restart_at: float | None = None
    _log_file: IO[bytes] | None = field(default=None, repr=False)


class Supervisor:
    """Start, watch, restart and stop named child processes.

    Parameters
    ----------
    on_event : callable, optional
        Receives one line per lifecycle event (started, exited, restarting); defaults to
        doing nothing. ``make run`` prints them.
    """

    def __init__(self, on_event: Callable[[str], None] | None = None) -> None:
        self.children: dict[str, Child] = {}
        self._on_event = on_event or (lambda line: None)
        self._lock = threading.RLock()
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ children
    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        log: Path | None = None,
        restart: bool = True,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` as child ``name`` (replacing a stopped one of that name)."""
        child = Child(name, list(argv), env, str(cwd) if cwd else None, log, restart, backoff=BACKOFF_INITIAL_SECONDS)
        with self._lock:
            running = self.children[name].process if name in self.children else None
            if running is not None and running.poll() is None:
                raise ValueError(f"name: a child called {name!r} is already running")
            self.children[name] = child
            self._spawn(child)
        self._ensure_watcher()
        assert child.process is not None
        return child.process

    def _spawn(self, child: Child) -> None:
        if child.log is not None:
            child.log.parent.mkdir(parents=True, exist_ok=True)
            child._log_file = child.log.open("ab")
        child.process = subprocess.Popen(
            child.argv,
            env=child.env,
            cwd=child.cwd,
            stdout=child._log_file,
            stderr=subprocess.STDOUT if child._log_file else None,
            start_new_session=True,  # own process group: Ctrl-C and kill -9 reach it only through us
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        self._on_event(f"{child.name} started (pid {child.process.pid})")

    def process(self, name: str) -> subprocess.Popen[bytes]:
        """The child's current process (a new one after a restart)."""
        process = self.children[name].process
        assert process is not None
        return process

    def send_signal(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the child's process group; a supervised child is then restarted."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process(name).pid, sig)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """Stop supervising ``name`` and end it: ``sig``, then SIGKILL after ``timeout``; return its code."""
        with self._lock:
            child = self.children.pop(name)
        process = child.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        if child._log_file:
            child._log_file.close()
        return process.returncode

    def stop_all(self, order: Sequence[str] = ()) -> None:
        """Stop every child: the names in ``order`` first, in that order, then the rest."""
        self._stopping.set()
        names = [n for n in order if n in self.children] + [n for n in self.children if n not in order]
        for name in names:
            self.stop(name)

    # ------------------------------------------------------------------ watching
    def _ensure_watcher(self) -> None:
        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)
                self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.2):
            self.check()

    def check(self) -> None:
        """Restart supervised children that exited (after their back-off); called by the watcher."""
        now = time.monotonic()
        with self._lock:
            for child in list(self.children.values()):
                process = child.process
                if process is None or process.poll() is None or not child.restart:
                    continue
                if child.restart_at is None:
                    ran = now - child.started_at
                    child.backoff = BACKOFF_INITIAL_SECONDS if ran >= HEALTHY_SECONDS else child.backoff
                    child.restart_at = now + child.backoff
                    self._on_event(
                        f"{child.name} exited with status {process.returncode} after {ran:.1f} s; "
                        f"restarting in {child.backoff:.1f} s"
                    )
                    child.backoff = min(child.backoff * 2, BACKOFF_MAX_SECONDS)
                elif now >= child.restart_at:
                    if child._log_file:
                        child._log_file.close()
                    self._spawn(child)
                    child.restarts += 1

    def exited(self) -> dict[str, int]:
        """Children that are not running and will not be restarted: name → exit status."""
        with self._lock:
            return {
                name: child.process.returncode
                for name, child in self.children.items()
                if child.process is not None and child.process.poll() is not None and not child.restart
            }
