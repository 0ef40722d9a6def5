"""Run the whole embedded stack in one terminal: web server, Celery worker and beat.

``make run`` uses this. Every process runs the production code path (gunicorn, a real
Celery worker, beat) on the embedded defaults (SQLite in WAL mode, filesystem broker).
Ctrl-C stops them all; if one dies, the others are stopped too.
"""

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start gunicorn, a Celery worker and Celery beat; stop them all on Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument(
            "--extra",
            action="append",
            default=[],
            metavar="COMMAND",
            help="another process to supervise (a shell command), repeatable",
        )

    def handle(self, *args, **options):
        python = sys.executable
        var = str(settings.VAR_DIR)
        commands = {
            "web": [
                python,
                "-m",
                "gunicorn",
                "mabdash.wsgi",
                "--config",
                "gunicorn.conf.py",
                "--bind",
                options["bind"],
                "--workers",
                str(options["web_workers"]),
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "mabdash",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "1",
                "--hostname",
                "worker@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "mabdash",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                f"{var}/celerybeat-schedule",
            ],
        }
        for index, extra in enumerate(options["extra"]):
            commands[f"extra{index}"] = ["/bin/sh", "-c", extra]
        processes = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
        self.stdout.write(f"mabdash is starting at http://{options['bind']}/ — Ctrl-C stops everything")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for name, process in processes.items():
                if name.startswith("extra") and process.poll() is not None:
                    continue  # helpers (the simulator) may finish or fail without taking the stack down
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with status {process.returncode}; stopping the rest")
                    exit_code = process.returncode or 1
                    stopping = True
            time.sleep(0.5)
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 15
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        sys.exit(exit_code)
