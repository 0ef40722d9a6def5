"""Run the whole embedded stack in one terminal: web server, Celery worker and beat.

``make run`` uses this. Every process runs the production code path (gunicorn, a real
Celery worker, beat) on the embedded defaults (SQLite in WAL mode, filesystem broker),
under :class:`mabdash.processes.Supervisor`: a process that dies is restarted with
back-off. Their logs go to ``var/log/``; the console tells the story an operator cares
about — what each experiment is learning and serving, every action, approval and rollback
in one sentence, and warnings — instead of every periodic task. Ctrl-C stops everything.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from mabdash.experiments.models import Arm, AuditEntry, PolicyState
from mabdash.experiments.selectors import effective_allocation, overrides_active
from mabdash.processes import Supervisor, beat_command, web_command, worker_command

LOUD = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")
LEARNING_REPORT_SECONDS = 10.0


class Command(BaseCommand):
    help = "Start gunicorn, a Celery worker and Celery beat (restarted if they die); Ctrl-C stops them all."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument(
            "--extra",
            action="append",
            default=[],
            metavar="COMMAND",
            help="another process to run beside the stack (a shell command; not restarted), repeatable",
        )

    def say(self, line: str) -> None:
        self.stdout.write(f"{datetime.now():%H:%M:%S}  {line}")

    def handle(self, *args: Any, **options: Any) -> None:
        python = sys.executable
        logs = Path(settings.VAR_DIR) / "log"
        supervisor = Supervisor(on_event=self.say)
        supervisor.start("web", web_command(python, options["bind"], options["web_workers"]), log=logs / "web.log")
        supervisor.start("worker", worker_command(python, "worker@%h"), log=logs / "worker.log")
        evaluator = worker_command(python, "evaluator@%h", queues="evaluation")
        supervisor.start("evaluator", evaluator, log=logs / "evaluator.log")
        beat = beat_command(python, f"{settings.VAR_DIR}/celerybeat-schedule")
        supervisor.start("beat", beat, log=logs / "beat.log")
        for index, extra in enumerate(options["extra"]):
            name = "simulator" if "simulate" in extra else f"extra{index}"
            supervisor.start(name, ["/bin/sh", "-c", f"exec {extra}"], log=logs / f"{name}.log", restart=False)
        self.say(f"mabdash at http://{options['bind']}/ — logs in {logs}/ — Ctrl-C stops everything")

        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        story = Story(self.say)
        tails = {name: LogTail(logs / f"{name}.log") for name in supervisor.children}
        reported: set[str] = set()
        while not stop.wait(1.0):
            for name, tail in tails.items():
                for line in tail.new_lines():
                    if LOUD.search(line):
                        self.say(f"{name}: {line}")
            for name, status in supervisor.exited().items():
                if name not in reported:
                    reported.add(name)
                    self.say(f"{name} finished with status {status}")
            story.tell()
        self.say("stopping …")
        supervisor.stop_all(order=["simulator", "web", "worker", "beat"])
        self.say("stopped")


class LogTail:
    """The lines appended to a log file since the last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = ""

    def new_lines(self) -> list[str]:
        try:
            with self.path.open("r", errors="replace") as handle:
                handle.seek(self.offset)
                text = handle.read()
                self.offset = handle.tell()
        except FileNotFoundError:
            return []
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        return [line for line in lines if line.strip()]


class Story:
    """What happened, from the source of truth: audit entries and what each experiment learned."""

    def __init__(self, say: Any) -> None:
        self.say = say
        self.since = timezone.now()
        self.last_audit_id = 0
        self.applied: dict[int, int] | None = None  # rewards learned per experiment at the last report
        self.next_report = time.monotonic() + LEARNING_REPORT_SECONDS

    def tell(self) -> None:
        try:
            if self.applied is None:  # what was learned before we started is not news
                self.applied = {pk: count for pk, count, _ in self._learned()}
            self._audit()
            if time.monotonic() >= self.next_report:
                self.next_report = time.monotonic() + LEARNING_REPORT_SECONDS
                self._learning()
        except DatabaseError as error:
            self.say(f"(database unavailable: {error})")
        finally:
            close_old_connections()

    def _audit(self) -> None:
        entries = AuditEntry.objects.filter(created_at__gte=self.since, pk__gt=self.last_audit_id).select_related(
            "experiment"
        )
        for entry in entries.order_by("id")[:50]:
            self.last_audit_id = entry.pk
            where = f"{entry.experiment.slug}: " if entry.experiment else ""
            self.say(f"{where}{entry.summary or entry.kind} ({entry.actor})")

    def _learned(self) -> list[tuple[int, int, PolicyState]]:
        states = PolicyState.objects.filter(experiment__archived_at__isnull=True).select_related("experiment")
        return [(state.experiment_id, state.applied_count, state) for state in states]

    def _learning(self) -> None:
        assert self.applied is not None
        learned = []
        for pk, count, state in self._learned():
            new = count - self.applied.get(pk, 0)
            self.applied[pk] = count
            if new > 0:
                learned.append((state.experiment, state, new))
        if not learned:
            return
        pks = [experiment.pk for experiment, _, _ in learned]
        overrides = overrides_active(pks)
        arms_of: dict[int, list[Arm]] = {}
        for arm in Arm.objects.filter(experiment__in=pks).select_related("model_version").order_by("position"):
            arms_of.setdefault(arm.experiment_id, []).append(arm)
        for experiment, state, new in sorted(learned, key=lambda row: row[0].slug):
            arms = arms_of.get(experiment.pk, [])
            served, how = effective_allocation(
                state.allocation, arms, overrides.get(experiment.pk), status=experiment.status
            )
            split = ", ".join(f"{arm.model_version.name} {share:.0%}" for arm, share in zip(arms, served, strict=True))
            self.say(f"{experiment.slug}: learned {new:,} rewards (policy v{state.version}); serving {split} ({how})")
