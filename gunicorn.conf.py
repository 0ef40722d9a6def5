"""gunicorn settings shared by `make run`, docker-compose and the benchmarks."""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = 30
graceful_timeout = 20
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
# Keep-alive lets a model server reuse its connection for every decide.
keepalive = 5


def worker_exit(server, worker):
    """Write the worker's buffered decisions before it exits (graceful stop loses none)."""
    from mabdash.experiments.decision_log import decision_buffer

    decision_buffer.stop()
