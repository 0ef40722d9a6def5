"""The input boundary: hostile bodies and paths get a JSON 4xx naming the field, per item
inside batches; every error answer of the API is JSON in the documented shape."""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client
from django.urls import path

from mabdash.experiments.models import Reward
from mabdash.wsgi import MAX_TARGET, RequestGuard

pytestmark = pytest.mark.django_db


def post(client, key: str, body: bytes | str, path: str = "/api/v1/rewards/"):
    return client.generic("POST", path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {key}")


def shape(response) -> dict:
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) >= {"detail", "errors"}, body
    return body


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ("[" * 1000 + "]" * 1000, {"body": ['must be a reward object or {"rewards": [...]}']}),
        ("[" * 5000, {"body": ["JSON nested more than 1,024 levels deep"]}),
        (
            '{"experiment": "churn", "arm": 0, "value": ' + "1" * 310 + "}",
            {"value": ["must be a finite number in [-1e+15, 1e+15]"]},
        ),
        (
            '{"experiment": "churn", "arm": 0, "value": ' + "9" * 5000 + "}",
            {"value": ["must be a finite number in [-1e+15, 1e+15]"]},
        ),
        (
            '{"experiment": "churn", "arm": 0, "value": 1e999}',
            {"value": ["must be a finite number in [-1e+15, 1e+15]"]},
        ),
        (
            '{"experiment": "churn", "arm": 0, "value": -Infinity}',
            {"value": ["must be a finite number in [-1e+15, 1e+15]"]},
        ),
        (
            '{"experiment": "churn", "arm": 0, "value": 1, "observed_at": "2026-13-45T00:00:00Z"}',
            {"observed_at": ["'2026-13-45T00:00:00Z' is not a real date and time"]},
        ),
        (
            '{"experiment": "churn", "arm": 0, "value": 1, "observed_at": "2026-02-30T00:00:00Z"}',
            {"observed_at": ["'2026-02-30T00:00:00Z' is not a real date and time"]},
        ),
        (
            '{"experiment": "churn", "arm": 0, "value": 1, "observed_at": "2026-02-01T25:00:00Z"}',
            {"observed_at": ["'2026-02-01T25:00:00Z' is not a real date and time"]},
        ),
        (
            '{"experiment": "churn", "arm": 0, "value": 1, "event_id": "\\u0000"}',
            {"event_id": ["must not contain NUL characters"]},
        ),
        (
            '{"experiment": "churn", "arm": 0, "value": 1, "event_id": "\\udc00x"}',
            {"event_id": ["must be valid Unicode (no unpaired surrogates)"]},
        ),
        ('{"experiment": "churn", "arm": 0, "value": 1, "event_id": 7}', {"event_id": ["must be a string"]}),
        (
            '{"experiment": "churn", "arm": 0, "value": 1, "\\u0000": 1}',
            {
                "(unprintable name)": [
                    "unknown field; expected one of event_id, decision_id, experiment, arm, value, successes, trials, "
                    "observed_at"
                ]
            },
        ),
        (b'\xff\xfe{"value": 1}', {"body": ["the body is not valid UTF-8"]}),
        ("", {"body": ['empty; send a reward object or {"rewards": [...]}']}),
        ("   ", {"body": ["not JSON: Expecting value (line 1, column 4)"]}),
    ],
)
def test_hostile_single_rewards_get_a_400_naming_the_field(client_key, experiment, body, errors):
    response = post(Client(), client_key, body)
    assert response.status_code == 400
    assert shape(response)["errors"] == errors
    assert Reward.objects.count() == 0


def test_one_hostile_item_costs_only_itself(client_key, experiment):
    items = [
        '{"experiment": "churn", "arm": 0, "value": 1, "event_id": "good-1"}',
        '{"experiment": "churn", "arm": 0, "value": ' + "1" * 310 + ', "event_id": "huge"}',
        '{"experiment": "churn", "arm": 0, "value": NaN, "event_id": "nan"}',
        '{"experiment": "churn", "arm": 0, "value": 1, "observed_at": "2026-02-30T00:00:00Z", "event_id": "date"}',
        '{"experiment": "churn", "arm": 0, "value": 1, "event_id": "nul\\u0000"}',
        '{"experiment": "churn", "arm": 0, "value": 1, "event_id": "lone\\ud800"}',
        "[[[[[[[[[[1]]]]]]]]]]",
        '{"experiment": "churn", "arm": 1, "value": 0, "event_id": "good-2"}',
    ]
    response = post(Client(), client_key, '{"rewards": [' + ", ".join(items) + "]}")
    assert response.status_code == 200
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["accepted"] + ["rejected"] * 6 + ["accepted"]
    assert [list(r.get("errors", {})) for r in body["results"]] == [
        [],
        ["value"],
        ["value"],
        ["observed_at"],
        ["event_id"],
        ["event_id"],
        ["reward"],
        [],
    ]
    assert sorted(Reward.objects.values_list("event_id", flat=True)) == ["good-1", "good-2"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/experiments/x%00/decide/",
        "/api/v1/experiments/" + "a" * 300 + "/decide/",
        "/api/v1/experiments/UPPER/decide/",
    ],
)
def test_hostile_paths_are_a_json_404_before_any_database_access(
    client_key, experiment, path, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = Client().post(path, HTTP_AUTHORIZATION=f"Api-Key {client_key}")
    assert response.status_code == 404
    assert shape(response)["detail"].startswith("No API endpoint at /api/v1/experiments/")


def test_405_and_415_are_json(client_key, experiment):
    wrong_method = Client().delete("/api/v1/rewards/", HTTP_AUTHORIZATION=f"Api-Key {client_key}")
    assert wrong_method.status_code == 405
    assert shape(wrong_method) == {"detail": 'Method "DELETE" not allowed.', "errors": {}}
    form = Client().post("/api/v1/rewards/", {"value": "1"}, HTTP_AUTHORIZATION=f"Api-Key {client_key}")
    assert form.status_code == 415
    assert shape(form)["detail"].startswith("Unsupported media type")


def test_a_too_large_body_is_a_json_413(client_key, experiment, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post(Client(), client_key, json.dumps({"rewards": [{"value": 1}] * 200}))
    assert response.status_code == 413
    assert shape(response)["detail"] == "Request body is larger than the limit of 1000 bytes."


def boom(request):
    raise RuntimeError("a bug of ours")


urlpatterns = [path("api/v1/boom/", boom)]
handler500 = "mabdash.api_errors.server_error"


@pytest.mark.urls(__name__)
def test_a_server_error_is_json_and_says_nothing_about_the_cause():
    import mabdash.urls

    assert mabdash.urls.handler500 == handler500  # the project's URLconf uses the same handler
    response = Client(raise_request_exception=False).get("/api/v1/boom/")
    assert response.status_code == 500
    assert shape(response) == {
        "detail": "Internal error; it has been logged. Retry, or report it if it persists.",
        "errors": {},
    }


# --------------------------------------------------------------------------- the WSGI guard
def call(app, environ: dict) -> tuple[str, bytes]:
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return seen["status"], body


def test_an_over_long_target_is_a_json_414():
    guard = RequestGuard(lambda environ, start_response: pytest.fail("must not reach Django"))
    status, body = call(guard, {"PATH_INFO": "/api/v1/", "QUERY_STRING": "q=" + "x" * MAX_TARGET})
    assert status == "414 URI Too Long"
    assert json.loads(body) == {"detail": "The request target is longer than 4096 characters.", "errors": {}}


def test_a_chunked_body_is_read_whole_not_as_empty(settings):
    received = {}

    def app(environ, start_response):
        received["length"] = environ["CONTENT_LENGTH"]
        received["body"] = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b""]

    body = b'{"value": 1}'
    status, _ = call(
        RequestGuard(app),
        {"PATH_INFO": "/", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(body)},
    )
    assert status == "200 OK" and received == {"length": str(len(body)), "body": body}
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 5
    status, answer = call(
        RequestGuard(app), {"PATH_INFO": "/", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(body)}
    )
    assert status == "413 Content Too Large"
    assert json.loads(answer)["detail"] == "Request body is larger than the limit of 5 bytes."
