"""A census-income model server that lets mabdash choose the model for each request.

    python examples/census_model_server.py --mabdash http://127.0.0.1:8000 --key-file var/demo-api-key

It trains the demo's three models (logistic regression, a tree, gradient boosting) on the
census data shipped in ``data/``, then serves:

- ``POST /predict`` ``{"features": [...]}`` → ``{"prediction": 0|1, "model": "census-tree",
  "decision_id": "…"}``: mabdash decides which model answers (in-process, local mode);
- ``POST /feedback`` ``{"decision_id": "…", "label": 0|1}`` → 202: the true label arrived
  later; the reward (was the prediction right?) is queued and sent to mabdash in batches.

The mabdash part is the three calls marked below; the rest is an ordinary WSGI app.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server

import numpy as np
from mabdash_client import Client, Decision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout: replay/ has the models

#: Predictions kept for their feedback (oldest forgotten first).
REMEMBERED = 100_000


def create_app(mabdash: Client, experiment: str, models: dict[str, Any]) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: predictions chosen by mabdash, feedback turned into rewards."""
    served: OrderedDict[str, tuple[Decision, int]] = OrderedDict()

    def predict(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        features = np.asarray(body["features"], dtype=float).reshape(1, -1)
        decision = mabdash.decide(experiment)  # 1. which model serves this request
        prediction = int(models[decision.model_name].predict(features)[0])
        served[decision.decision_id] = (decision, prediction)
        while len(served) > REMEMBERED:
            served.popitem(last=False)
        return "200 OK", {"prediction": prediction, "model": decision.model_name, "decision_id": decision.decision_id}

    def feedback(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        remembered = served.pop(body["decision_id"], None)
        if remembered is None:
            return "404 Not Found", {"error": "decision_id: unknown or forgotten"}
        decision, prediction = remembered
        mabdash.reward(decision, value=float(prediction == int(body["label"])))  # 2. how good it was
        return "202 Accepted", {"queued": True}

    routes = {"/predict": predict, "/feedback": feedback}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        handler = routes.get(environ["PATH_INFO"])
        if handler is None or environ["REQUEST_METHOD"] != "POST":
            status, answer = "404 Not Found", {"error": "POST /predict or /feedback"}
        else:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                status, answer = handler(json.loads(environ["wsgi.input"].read(length)))
            except (ValueError, KeyError, TypeError) as error:
                status, answer = "400 Bad Request", {"error": f"bad request: {error}"}
        data = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    return app


def main() -> None:
    from replay.simulator import train_demo_models

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mabdash", default="http://127.0.0.1:8000")
    parser.add_argument("--key-file", type=Path, default=Path("var/demo-api-key"))
    parser.add_argument("--experiment", default="census-income")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    models, _, _ = train_demo_models()
    # 3. one client for the process's lifetime; closing it delivers what is queued.
    with Client(args.mabdash, args.key_file.read_text().strip(), mode="local") as mabdash:
        server = make_server("127.0.0.1", args.port, create_app(mabdash, args.experiment, models))
        print(f"census model server on http://127.0.0.1:{args.port} (POST /predict, /feedback)")
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: leave the with block, deliver, exit
            server.serve_forever()


if __name__ == "__main__":
    main()
