"""gunicorn settings shared by `make run`, docker-compose and the benchmarks."""

import os
import shutil
from pathlib import Path

# Prometheus metrics of all worker processes are aggregated through this folder; it must be
# set before the workers import prometheus_client, and emptied when the server starts.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    str(Path(os.environ.get("MABDASH_VAR_DIR", Path(__file__).parent / "var")) / "prometheus"),
)

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = 30
graceful_timeout = 20
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
# Keep-alive lets a model server reuse its connection for every decide.
keepalive = 5
# No request-line limit here: mabdash.wsgi answers over-long targets with a JSON 414 instead
# of gunicorn's HTML page.
limit_request_line = 0


def on_starting(server):
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    """Write the worker's buffered decisions before it exits (graceful stop loses none)."""
    from mabdash.experiments.services.decision_log import decision_buffer

    decision_buffer.stop()
