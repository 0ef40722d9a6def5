"""Live demo traffic: replay the census stream against a running mabdash through its REST API.

Each simulated request asks mabdash which model to use (``decide``), lets that model
predict, scores the prediction against the true label and reports the reward (in
batches, through the Python client ``mabdash_client`` — the demo uses what model servers
use). After ``drift_at`` requests one model breaks — an injected fault standing for a
broken feature pipeline: it predicts ">50K" for everyone — so its reward collapses and the
dashboard shows mabdash rolling it back. Uses only the public API (and no Django).
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from mabdash_client import Client as MabdashClient
from mabdash_client import MabdashError

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


def connect(base_url: str, key: str, *, mode: str = "remote", batch: int = 20) -> MabdashClient:
    """The mabdash client the simulated model server uses (docs/CLIENT.md)."""
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SimulatorError(f"--url: expected http(s)://host:port, got {base_url!r}")
    # Rewards leave in batches of ``batch`` or after a second, retried until delivered.
    return MabdashClient(base_url, key, mode=mode, batch_size=batch, max_batch_age=1.0)  # type: ignore[arg-type]


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
    client: MabdashClient,
    experiment: str,
    *,
    requests: int = 0,
    rate: float = 20.0,
    drift_at: int | None = 1500,
    broken_model: str = "census-boosting",
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> Counters:
    """Send ``requests`` requests (0: until interrupted) at ``rate`` per second (0: as fast as possible)."""
    models, X, y = train_demo_models(seed)
    if broken_model not in models:
        raise SimulatorError(f"--broken-model: one of {', '.join(models)}")
    counters = Counters()
    started = time.monotonic()
    index = 0
    while not requests or counters.decisions < requests:
        if rate > 0:
            delay = started + counters.decisions / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        try:
            decision = client.decide(experiment)
        except MabdashError as error:
            if error.status in (401, 403, 404):
                raise SimulatorError(str(error)) from None
            counters.errors += 1
            time.sleep(1)
            continue
        name = decision.model_name
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
        client.reward(decision, value=float(prediction == y[row]))
        if drift_at is not None and counters.decisions == drift_at:
            log(f"drift: from now on {broken_model} is broken (predicts >50K for everyone)")
        if counters.decisions % 500 == 0:
            counters.rewards = _delivered(client)
            since = f"; {broken_model} served {counters.broken_served} since it broke" if broken_model_broke else ""
            log(f"{counters.decisions} decisions, {counters.rewards} rewards, served {counters.served}{since}")
    report = client.flush(timeout=120)
    counters.rewards = _delivered(client)
    if not report.complete:
        raise SimulatorError(f"{report.pending} rewards still queued, {len(report.undelivered)} undelivered")
    return counters


def _delivered(client: MabdashClient) -> int:
    stats = client.stats
    return stats["accepted"] + stats["duplicate"]


def wait_for_server(base_url: str, timeout: float = 120.0) -> None:
    """Wait until the server answers (``make run`` starts the simulator with the server)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base_url.rstrip('/')}/livez", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SimulatorError(f"no answer from {base_url} within {timeout:.0f} s")
        time.sleep(1)
