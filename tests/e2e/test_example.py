"""examples/census_model_server.py against a running mabdash: predictions chosen by mabdash,
feedback learned exactly."""

from __future__ import annotations

import importlib.util
import json
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests
from mabdash_client import Client as MabdashClient

from mabdash.devstack import ROOT, Client

pytestmark = pytest.mark.stack


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def load_example():
    spec = importlib.util.spec_from_file_location("census_model_server", ROOT / "examples" / "census_model_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_model_server_serves_and_learns(embedded_stack):
    from replay.simulator import train_demo_models

    stack = embedded_stack
    stack.manage("seed_demo")
    stack.start_worker()
    web = stack.start_web()
    key = (stack.var / "demo-api-key").read_text().strip()
    models, X, y = train_demo_models()
    example = load_example()
    with MabdashClient(web, key, mode="local") as mabdash:
        server = make_server(
            "127.0.0.1", 0, example.create_app(mabdash, "census-income", models), handler_class=QuietHandler
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        answers = []
        for row in range(120):
            answer = requests.post(f"{url}/predict", json={"features": X[row].tolist()}, timeout=10).json()
            assert answer["model"] in models and answer["prediction"] in (0, 1)
            feedback = requests.post(
                f"{url}/feedback", json={"decision_id": answer["decision_id"], "label": int(y[row])}
            )
            assert feedback.status_code == 202
            answers.append((answer, int(y[row])))
        unknown = requests.post(f"{url}/feedback", data=json.dumps({"decision_id": "nope", "label": 1}), timeout=10)
        bad = requests.post(f"{url}/predict", data="{", timeout=10)
        assert (unknown.status_code, bad.status_code) == (404, 400)
        assert mabdash.flush(timeout=30).complete
        server.shutdown()
    state = Client(web, key).wait_until_applied("census-income", 120)
    by_model = {arm["model"]["name"]: arm for arm in state["arms"]}
    for name in models:
        mine = [(a, label) for a, label in answers if a["model"] == name]
        assert by_model[name]["rewards"] == len(mine)
        assert by_model[name]["reward_sum"] == sum(float(a["prediction"] == label) for a, label in mine)
