"""A bounded fuzz of the HTTP surface: whatever a client sends, the answer is audio or a JSON
error with a message, never a server error, and the server goes on serving. Hypothesis for
the JSON bodies and the request line; tests/http/http_fuzz.py on raw sockets for what no
client library sends (broken framing, forged headers, half-sent requests, hang-ups), with
health checks between batches (benchmarks/http_fuzz.py runs it for 20,000 requests)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wyoming_indextts.http import HttpSettings, guard, server

from tests.conftest import assert_speech, make_cache
from tests.http.conftest import WAV_HEADER_BYTES, live_server
from tests.http.http_fuzz import fuzz_http

EXAMPLES = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TOKEN = "fuzz-token"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
speech_text = st.text(max_size=40) | st.sampled_from(["Hello there.", "欢迎回家。", "", "   ", "!!!", "a" * 40])
formats = st.sampled_from(["wav", "pcm", "flac", "mp3", "opus", "aac", "ogg", ""]) | st.text(max_size=5)


@pytest.fixture(scope="module")
def running(piper, tmp_path_factory):
    settings_ = HttpSettings(token=TOKEN, max_text_bytes=4096)
    with live_server({"piper": piper}, cache=make_cache(tmp_path_factory.mktemp("fuzz")), settings=settings_) as server:
        yield server


@pytest.fixture(scope="module")
def live(running):
    with httpx.Client(base_url=running.base_url, timeout=60) as client:
        yield client


def assert_well_formed(response: httpx.Response) -> None:
    assert response.status_code < 500 or response.status_code == 503, response.text
    if response.status_code == 200:
        kind = response.headers["content-type"]
        assert (kind.startswith("audio/") and response.content) or (kind == "application/json" and response.json())
    else:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"]


@EXAMPLES
@given(
    path=st.sampled_from(["/tts", "/v1/audio/speech"]),
    body=st.fixed_dictionaries(
        {},
        optional={
            "text": speech_text | json_values,
            "input": speech_text | json_values,
            "voice": st.sampled_from(["en_US-joe-medium", "alloy", "../../etc/passwd", ""]) | json_values,
            "format": formats,
            "response_format": formats,
            "model": st.text(max_size=10) | json_values,
            # JSON has no NaN or infinity: the client refuses to send them (the raw-body test does).
            "speed": st.floats(allow_nan=False, allow_infinity=False) | json_values,
        },
    ),
)
def test_speech_endpoints_take_any_json(live, path, body):
    assert_well_formed(live.post(path, json=body))


@EXAMPLES
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.sampled_from(["/", "/tts", "/v1/audio/speech", "/v1/voices", "/health", "/metrics", "/v1/voices/x"])
    | st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20).map(lambda p: "/" + p),
    content=st.binary(max_size=300),
    content_type=st.sampled_from(["application/json", "text/plain", "multipart/form-data", "application/x-www-form-urlencoded"]),
    authorized=st.booleans(),
)
def test_any_method_path_and_body(live, method, path, content, content_type, authorized):
    headers = {"content-type": content_type}
    if authorized:
        headers["authorization"] = f"Bearer {TOKEN}"
    try:
        response = live.request(method, path, content=content, headers=headers)
    except httpx.InvalidURL:
        return  # the client refused to send it
    if response.headers.get("content-type", "").startswith(("text/html", "text/plain; version", "application/javascript", "text/css")):
        return  # the page and /metrics
    assert_well_formed(response)


def test_raw_socket_fuzz_with_health_checks(running, monkeypatch):
    # Short deadlines, so the half-sent requests are closed within the test's time.
    monkeypatch.setattr(server, "REQUEST_HEAD_SECONDS", 2.0)
    monkeypatch.setattr(guard, "BODY_IDLE_SECONDS", 2.0)
    report = asyncio.run(fuzz_http(running.http.port, running.harness.port, 600, TOKEN, batch=200, closing_seconds=20))
    assert report.requests == 600 and report.health_checks == 3
    assert report.crashes == [], report.crashes[:5]
    assert report.hangs == [], report.hangs[:5]
    assert report.failed_health_checks == [], report.failed_health_checks
    # The fuzz reached the routes, the guards and the protocol level, not only one of them.
    assert {200, 400, 401, 404, 413, 422} <= set(report.statuses), report.statuses


def test_still_serving_after_the_fuzz(live):
    response = live.post("/tts", json={"text": "Still here."})
    assert response.status_code == 200
    assert_speech(response.content[WAV_HEADER_BYTES:], 22050, "Still here.")
