"""A real mabdash deployment in subprocesses, for the end-to-end tests and the benchmarks.

A ``Stack`` owns a database (a fresh SQLite file, or a fresh database on a PostgreSQL
server), a broker (the filesystem transport, or a Redis URL) and the processes a
deployment runs — gunicorn web servers, Celery workers and beat — started through
``mabdash.processes`` like ``make run`` starts them. Callers talk to it only over HTTP, the
management commands and SQL, as an operator would. Development tooling: nothing in the
served application imports it (``requests`` and ``psycopg`` are imported where used).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mabdash.processes import Supervisor, beat_command, web_command, worker_command

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class PostgresDatabase:
    """A throw-away database on the run's PostgreSQL server."""

    def __init__(self, server_url: str) -> None:
        import psycopg

        self.server_url = server_url
        self.name = f"mabdash_e2e_{uuid.uuid4().hex[:10]}"
        base, _, _ = server_url.rpartition("/")
        self.url = f"{base}/{self.name}"
        self._admin_url = f"{base}/postgres"
        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Stack:
    """Processes of one deployment sharing a database and a broker."""

    def __init__(
        self,
        workdir: Path,
        *,
        database_url: str,
        broker_url: str | None,
        redis_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.var = workdir / "var"
        self.var.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "mabdash.settings",
            "DATABASE_URL": database_url,
            "MABDASH_VAR_DIR": str(self.var),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "MABDASH_DECISION_FLUSH_SECONDS": "0.2",
            "MABDASH_SWEEP_SECONDS": "1",
            "MABDASH_LOG_LEVEL": "WARNING",
            "REDIS_URL": redis_url or "",
        }
        if broker_url:
            self.env["CELERY_BROKER_URL"] = broker_url
        else:
            self.env.pop("CELERY_BROKER_URL", None)
        self.env.update(env or {})
        self.supervisor = Supervisor()
        self.logs: dict[str, Path] = {}

    # ------------------------------------------------------------------ commands
    def manage(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def shell(self, code: str) -> str:
        """Run Python in the stack's Django environment; return what it printed."""
        return self.manage("shell", "-v", "0", "-c", code).stdout.strip()

    def setup(self) -> None:
        self.manage("migrate", "--no-input", "-v", "0")

    def api_key(self, name: str, *args: str) -> str:
        return self.manage("create_api_key", name, "--quiet", *args).stdout.strip()

    # ------------------------------------------------------------------ processes
    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None, restart: bool) -> None:
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        self.supervisor.start(name, command, env={**self.env, **(env or {})}, cwd=ROOT, log=log, restart=restart)

    def start_web(self, name: str = "web", workers: int = 1, restart: bool = False, port: int | None = None) -> str:
        """Start gunicorn (on ``port``, e.g. to bring a stopped server back where clients expect it)."""
        port = port or free_port()
        config = str(ROOT / "gunicorn.conf.py")
        self._spawn(name, web_command(sys.executable, f"127.0.0.1:{port}", workers, config), None, restart)
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            import requests

            self.assert_alive(name)
            try:
                return requests.get(f"{url}/livez", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(answers, 30, f"{name} to answer")
        return url

    def start_worker(self, name: str = "worker", env: dict[str, str] | None = None, restart: bool = False) -> None:
        """A solo-pool worker: its one process is the one a test kills."""
        hostname = f"{name}-{uuid.uuid4().hex[:6]}@%h"
        self._spawn(name, worker_command(sys.executable, hostname, pool="solo"), env, restart)

    def start_evaluator(self, restart: bool = False) -> None:
        """The worker of the ``evaluation`` queue (counterfactual reports)."""
        hostname = f"evaluator-{uuid.uuid4().hex[:6]}@%h"
        command = worker_command(sys.executable, hostname, pool="solo", queues="evaluation")
        self._spawn("evaluator", command, None, restart)

    def start_beat(self, restart: bool = False) -> None:
        self._spawn("beat", beat_command(sys.executable, str(self.var / "celerybeat-schedule")), None, restart)

    def pid(self, name: str) -> int:
        return self.supervisor.process(name).pid

    def assert_alive(self, name: str) -> None:
        process = self.supervisor.process(name)
        if process.poll() is not None:
            raise AssertionError(f"{name} exited with {process.returncode}:\n{self.logs[name].read_text()[-3000:]}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop supervising ``name`` and send it ``sig`` (SIGKILL: a crash, nothing flushed)."""
        self.supervisor.stop(name, sig, timeout=30)

    def stop(self) -> None:
        self.supervisor.stop_all(order=["web", "worker", "beat"])

    def log(self, name: str) -> str:
        return self.logs[name].read_text()


class Client:
    """The REST API of a stack, as a model server or an admin script uses it."""

    def __init__(self, base_url: str, key: str) -> None:
        import requests

        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Api-Key {key}"

    def get(self, path: str) -> Any:
        return self.session.get(self.base_url + path, timeout=30)

    def post(self, path: str, body: Any = None) -> Any:
        return self.session.post(self.base_url + path, json=body, timeout=60)

    def state(self, slug: str) -> dict[str, Any]:
        response = self.get(f"/api/v1/experiments/{slug}/state/")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_until_applied(self, slug: str, applied: int, timeout: float = 60) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            state = self.state(slug)
            return state if state["pending_rewards"] == 0 and state["applied_rewards"] == applied else None

        return wait_for(done, timeout, f"{applied} rewards applied on {slug}", interval=0.2)


def create_experiment(
    admin: Client, slug: str, policy: dict[str, Any] | None = None, arms: int = 3, **fields: Any
) -> dict[str, Any]:
    """Register ``arms`` model versions and a running experiment over them, via the API."""
    ids = []
    for i in range(arms):
        response = admin.post(
            "/api/v1/models/", {"name": f"{slug}-model", "version": str(i), "artifact_uri": f"s3://{slug}/{i}"}
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    body = {
        "slug": slug,
        "name": slug,
        "policy": policy or {"kind": "thompson"},
        "arms": ids,
        "status": "running",
        **fields,
    }
    response = admin.post("/api/v1/experiments/", body)
    assert response.status_code == 201, response.text
    return response.json()


class RedisServer:
    """A private redis-server on a free port (tests that stop a service never stop the shared one)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=(self.workdir / "redis.log").open("a"),
            stderr=subprocess.STDOUT,
        )
        import redis

        wait_for(lambda: self._ping(redis), 10, "redis-server to start")

    def _ping(self, redis_module: Any) -> bool:
        try:
            return bool(redis_module.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis_module.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class PgBouncer:
    """A private PgBouncer in transaction pooling mode in front of the run's PostgreSQL server.

    PgBouncer refuses to run as root: as root it drops to ``nobody``, with its files in a
    directory that user may read.
    """

    def __init__(self, server_url: str, pool_size: int = 10) -> None:
        parts = urllib.parse.urlsplit(server_url)
        self.user = parts.username or "postgres"
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="mabdash-pgbouncer-"))
        (self.directory / "users.txt").write_text(f'"{self.user}" ""\n')
        (self.directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={parts.hostname or '127.0.0.1'} port={parts.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.directory / 'users.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 500\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\npidfile = {self.directory / 'pgbouncer.pid'}\n"
        )

    def url(self, database: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        command = ["pgbouncer", "-d"]
        if os.geteuid() == 0:
            self.directory.chmod(0o755)
            shutil.chown(self.directory, "nobody")
            for path in self.directory.iterdir():
                shutil.chown(path, "nobody")
            command += ["-u", "nobody"]
        subprocess.run([*command, str(self.directory / "pgbouncer.ini")], check=True, timeout=30)
        wait_for(lambda: _accepts(self.port), 10, "pgbouncer to listen")

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        pid_file = self.directory / "pgbouncer.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
        shutil.rmtree(self.directory, ignore_errors=True)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def postgres_binaries() -> Path | None:
    """The folder of PostgreSQL's server binaries (initdb, pg_ctl), if installed."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresServer:
    """A private PostgreSQL cluster on a free port, that a test may stop and restart.

    PostgreSQL refuses to run as root, so when the tests run as root the cluster is owned by
    and run as the ``postgres`` user.
    """

    def __init__(self) -> None:
        self.bin = postgres_binaries()
        self.port = free_port()
        # Its own folder under /tmp: the postgres user cannot enter pytest's root-only tmp_path.
        self.root = Path(tempfile.mkdtemp(prefix="mabdash-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    @property
    def binaries(self) -> Path:
        if self.bin is None:
            raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
        return self.bin

    def init(self) -> None:
        for folder in (self.data, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            if self.as_user:
                shutil.chown(folder, "postgres", "postgres")
        self._run(str(self.binaries / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.binaries / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-l",
            str(self.data / "server.log"),
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
