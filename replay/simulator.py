"""Live demo traffic: replay the census stream against a running mabdash through its REST API.

Each simulated request asks mabdash which model to use (``decide``), lets that model
predict, scores the prediction against the true label and reports the reward (in
batches). After ``drift_at`` requests one model breaks — an injected fault standing for a
broken feature pipeline: it predicts ">50K" for everyone — so its reward collapses and the
dashboard shows mabdash rolling it back. Uses only the public API (and no Django).
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from replay.datasets import load_adult

#: The demo experiment's model versions and the scikit-learn model each name stands for.
DEMO_MODELS = {"census-logreg": 0, "census-tree": 1, "census-boosting": 3}


class SimulatorError(RuntimeError):
    """The server refused the simulator in a way retrying will not fix."""


@dataclass
class Counters:
    decisions: int = 0
    rewards: int = 0
    broken_served: int = 0
    errors: int = 0
    served: dict[str, int] = field(default_factory=dict)


class Api:
    """A minimal keep-alive JSON client for the mabdash REST API."""

    def __init__(self, base_url: str, key: str, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise SimulatorError(f"--url: expected http(s)://host:port, got {base_url!r}")
        self.https = parsed.scheme == "https"
        self.host, self.port = parsed.hostname, parsed.port or (443 if self.https else 80)
        self.timeout = timeout
        self.headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
        self.connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        for attempt in range(2):  # one reconnect for a keep-alive connection the server closed
            if self.connection is None:
                cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
                self.connection = cls(self.host, self.port, timeout=self.timeout)
            try:
                self.connection.request(
                    method, path, body=None if body is None else json.dumps(body), headers=self.headers
                )
                response = self.connection.getresponse()
                payload = response.read()
                return response.status, json.loads(payload) if payload else None
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def train_demo_models(seed: int = 0) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Train the demo's models on 8,000 census rows; return them and the remaining stream."""
    from replay.streams import make_models

    table = load_adult()
    order = np.random.default_rng(seed).permutation(len(table))
    train, stream = order[:8000], order[8000:]
    candidates = make_models(seed)
    models = {}
    for name, index in DEMO_MODELS.items():
        model = candidates[index]
        model.fit(table.X[train], table.y[train])
        models[name] = model
    return models, table.X[stream], table.y[stream]


def simulate(
    api: Api,
    experiment: str,
    *,
    requests: int = 0,
    rate: float = 20.0,
    drift_at: int | None = 1500,
    broken_model: str = "census-boosting",
    batch: int = 20,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> Counters:
    """Send ``requests`` requests (0: until interrupted) at ``rate`` per second (0: as fast as possible)."""
    models, X, y = train_demo_models(seed)
    if broken_model not in models:
        raise SimulatorError(f"--broken-model: one of {', '.join(models)}")
    counters = Counters()
    pending: list[dict[str, Any]] = []
    started = time.monotonic()
    index = 0
    decide_path = f"/api/v1/experiments/{urllib.parse.quote(experiment)}/decide/"
    while not requests or counters.decisions < requests:
        if rate > 0:
            delay = started + counters.decisions / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        status, decision = api.request("POST", decide_path)
        if status in (401, 403, 404):
            raise SimulatorError(f"decide answered {status}: {decision.get('detail') if decision else ''}")
        if status != 200:
            counters.errors += 1
            time.sleep(1)
            continue
        name = decision["model"]["name"]
        model = models.get(name)
        if model is None:
            raise SimulatorError(f"the experiment serves model {name!r}, which the simulator does not know")
        row = index % len(y)
        index += 1
        broken_model_broke = drift_at is not None and counters.decisions >= drift_at
        broken = broken_model_broke and name == broken_model
        prediction = 1 if broken else int(model.predict(X[row : row + 1])[0])
        counters.decisions += 1
        counters.broken_served += broken
        counters.served[name] = counters.served.get(name, 0) + 1
        pending.append({"decision_id": decision["decision_id"], "value": float(prediction == y[row])})
        if drift_at is not None and counters.decisions == drift_at:
            log(f"drift: from now on {broken_model} is broken (predicts >50K for everyone)")
        if len(pending) >= batch:
            counters.rewards += _post(api, pending, counters)
            pending = []
        if counters.decisions % 500 == 0:
            since = f"; {broken_model} served {counters.broken_served} since it broke" if broken_model_broke else ""
            log(f"{counters.decisions} decisions, {counters.rewards} rewards, served {counters.served}{since}")
    if pending:
        counters.rewards += _post(api, pending, counters)
    return counters


def _post(api: Api, rewards: list[dict[str, Any]], counters: Counters) -> int:
    """Post a batch until the server takes it (it answers 503 while its database is down)."""
    for _ in range(30):
        status, body = api.request("POST", "/api/v1/rewards/", {"rewards": rewards})
        if status == 200:
            return int(body["accepted"]) + int(body["duplicate"])
        counters.errors += 1
        time.sleep(1)
    raise SimulatorError(f"rewards were refused 30 times; last answer {status}")


def wait_for_server(api: Api, timeout: float = 120.0) -> None:
    """Wait until the server answers (``make run`` starts the simulator with the server)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _ = api.request("GET", "/livez")
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SimulatorError(f"no answer from {api.host}:{api.port} within {timeout:.0f} s")
        time.sleep(1)
