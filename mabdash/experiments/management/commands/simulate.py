"""``manage.py simulate``: live demo traffic through the public REST API (see replay/simulator.py)."""

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Replay the census stream as live traffic against a running server: decide, predict, score, reward. "
        "One model breaks after --drift-at requests, so the dashboard shows its rollback."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--experiment", default="census-income")
        parser.add_argument("--key-file", type=Path, help="file holding a client API key (default var/demo-api-key)")
        parser.add_argument(
            "--requests", type=int, default=0, help="stop after this many (default 0: run until Ctrl-C)"
        )
        parser.add_argument("--rate", type=float, default=20.0, help="requests per second (0: as fast as possible)")
        parser.add_argument("--drift-at", type=int, default=1500, help="request at which one model breaks (-1: never)")
        parser.add_argument("--broken-model", default="census-boosting")
        parser.add_argument("--batch", type=int, default=20, help="rewards per POST (at most; sent after 1 s anyway)")
        parser.add_argument(
            "--mode", choices=["remote", "local"], default="remote", help="the client's decide mode (docs/CLIENT.md)"
        )
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            from replay.simulator import SimulatorError, connect, simulate, wait_for_server
        except ImportError as error:
            raise CommandError(
                f"the simulator needs the demo dependencies: pip install -r requirements-demo.txt ({error})"
            ) from None
        key_file = options["key_file"] or Path(settings.VAR_DIR) / "demo-api-key"
        if not key_file.is_file():
            raise CommandError(f"--key-file: {key_file} not found (run `python manage.py seed_demo` first)")
        if options["requests"] < 0 or options["rate"] < 0 or not 1 <= options["batch"] <= 10_000:
            raise CommandError("--requests and --rate must be ≥ 0, --batch 1 … 10,000")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request on the console
        try:
            client = connect(options["url"], key_file.read_text().strip(), mode=options["mode"], batch=options["batch"])
        except SimulatorError as error:
            raise CommandError(str(error)) from None
        try:
            wait_for_server(options["url"])
            self.stdout.write(f"simulating traffic on {options['experiment']} at {options['url']}")
            counters = simulate(
                client,
                options["experiment"],
                requests=options["requests"],
                rate=options["rate"],
                drift_at=None if options["drift_at"] < 0 else options["drift_at"],
                broken_model=options["broken_model"],
                seed=options["seed"],
                log=self.stdout.write,
            )
        except SimulatorError as error:
            raise CommandError(str(error)) from None
        except KeyboardInterrupt:
            return
        finally:
            report = client.close(timeout=10)  # deliver what is queued, also on Ctrl-C
            if report.undelivered or report.pending:
                self.stderr.write(f"{len(report.undelivered) + report.pending} rewards could not be delivered")
        self.stdout.write(
            f"done: {counters.decisions} decisions, {counters.rewards} rewards, served {counters.served} "
            f"({counters.broken_served} by the broken model), {counters.errors} retried errors"
        )
