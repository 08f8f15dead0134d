"""The HTTP API against the real server on real sockets, with the real bundled voice: the
official `openai` client, the seed's /tts, the cache shared with Wyoming, errors, the token,
health and metrics."""

from __future__ import annotations

import io
import json
import socket
import time

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from wyoming_indextts.http import HttpSettings
from wyoming_indextts.prerender import PrerenderList
from wyoming_indextts.synthesizer import ChainSettings

from tests.conftest import CountingEngine, assert_speech, make_cache
from tests.http.conftest import WAV_HEADER_BYTES, live_server

TEXT = "The garage door is open."
TOKEN = "s3cret-token"


@pytest.fixture
def joe(piper):
    """The bundled voice, counting its renders."""
    return CountingEngine(piper)


@pytest.fixture
def live(joe, tmp_path):
    with live_server({"piper": joe}, cache=make_cache(tmp_path)) as server:
        yield server


def openai_client(live, api_key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.base_url}/v1", api_key=api_key, max_retries=0, timeout=60)


def test_openai_client_gets_speech_in_every_format(live):
    client = openai_client(live)
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="en_US-joe-medium", input=TEXT, response_format="wav"
    ) as response:
        wav = response.read()
        assert response.headers["content-type"] == "audio/wav"
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt "
    rate = int.from_bytes(wav[24:28], "little")
    assert rate == 22050
    assert_speech(wav[WAV_HEADER_BYTES:], rate, TEXT)

    pcm = client.audio.speech.create(model="tts-1", voice="en_US-joe-medium", input=TEXT, response_format="pcm").read()
    assert_speech(pcm, 24000, TEXT)  # OpenAI's pcm: 24 kHz, whatever the voice's rate
    seconds = len(wav[WAV_HEADER_BYTES:]) / 2 / 22050
    assert abs(len(pcm) / 2 / 24000 - seconds) < 0.01

    for name, expected_rate in (("flac", 22050), ("mp3", 22050), ("opus", 48000)):
        body = client.audio.speech.create(model="tts-1", voice="en_US-joe-medium", input=TEXT, response_format=name).read()
        samples, decoded_rate = sf.read(io.BytesIO(body), dtype="float32")
        assert decoded_rate == expected_rate, name
        # Lossy codecs pad their first and last frames: allow 0.1 s.
        assert abs(len(samples) / decoded_rate - seconds) < 0.1, name
        assert_speech((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes(), decoded_rate, TEXT)


def test_one_render_serves_wyoming_and_http(live, joe):
    spoken = live.wyoming(TEXT)
    assert len(joe.calls) == 1
    response = httpx.post(f"{live.base_url}/tts", json={"text": TEXT}, timeout=60)
    assert response.status_code == 200
    assert response.content[WAV_HEADER_BYTES:] == spoken.audio
    assert len(joe.calls) == 1, "HTTP rendered the sentence again instead of using Wyoming's render"

    other = "The back door is locked."
    first = openai_client(live).audio.speech.create(model="x", voice="en_US-joe-medium", input=other, response_format="wav").read()
    assert len(joe.calls) == 2
    assert live.wyoming(other).audio == first[WAV_HEADER_BYTES:]
    assert len(joe.calls) == 2, "Wyoming rendered the sentence again instead of using HTTP's render"


def test_audio_streams_as_sentences_render(piper, tmp_path):
    slow = CountingEngine(piper, delay=0.4)
    sentences = ["First one is here.", "Second one follows.", "Third one ends it."]
    with live_server({"piper": slow}) as live:
        with httpx.stream("POST", f"{live.base_url}/tts", json={"text": " ".join(sentences)}, timeout=60) as response:
            pieces = response.iter_raw()
            first = next(pieces)
            rendered_when_first_arrived = len(slow.calls)
            rest = b"".join(pieces)
    assert first[:4] == b"RIFF"
    assert rendered_when_first_arrived < len(sentences), "the response waited for every sentence"
    assert len(slow.calls) == len(sentences)
    assert_speech((first + rest)[WAV_HEADER_BYTES:], 22050, " ".join(sentences))


def test_unknown_voice_speaks_in_the_default_voice_like_wyoming(live):
    response = httpx.post(f"{live.base_url}/tts", json={"text": TEXT, "voice": "alloy"}, timeout=60)
    assert response.status_code == 200 and response.headers["x-voice"] == "en_US-joe-medium"


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/tts", {"text": "?!… 🙂"}, 400, "Nothing to say"),
        ("/tts", {"text": 5}, 422, "text"),
        ("/tts", {"voice": "x"}, 422, "text: Field required"),
        ("/tts", {"text": "hi", "format": "ogg"}, 422, "format"),
        ("/v1/audio/speech", {"model": "tts-1", "input": "Hi.", "response_format": "aac"}, 400, "use one of wav, pcm"),
        ("/v1/audio/speech", {"model": "tts-1", "input": "Hi.", "speed": 9}, 422, "speed"),
        ("/v1/audio/speech", {"model": "tts-1", "input": "Hi.", "stream_format": "sse"}, 400, "'audio'"),
    ],
)
def test_bad_requests_get_json_errors_that_say_what_to_do(live, path, body, status, words):
    response = httpx.post(f"{live.base_url}{path}", json=body, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"] and error["code"]


def test_unknown_paths_answer_json(live):
    missing = httpx.get(f"{live.base_url}/nowhere")
    assert missing.status_code == 404 and "/docs" in missing.json()["error"]["message"]
    # A POST elsewhere could change something: without a token it is refused before routing.
    assert httpx.post(f"{live.base_url}/nowhere", json={}).status_code == 403


def test_openai_client_sees_the_error_message(live):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client(live).audio.speech.create(model="tts-1", voice="x", input="...", response_format="wav")
    assert "Nothing to say" in str(caught.value)


def test_text_over_the_wyoming_limit_is_refused_and_the_server_keeps_serving(piper):
    settings = HttpSettings(max_text_bytes=2000)
    with live_server({"piper": piper}, settings=settings) as live:
        big = json.dumps({"text": "word " * 1000})
        declared = httpx.post(f"{live.base_url}/tts", content=big, headers={"content-type": "application/json"})
        assert declared.status_code == 413 and "2000 bytes" in declared.json()["error"]["message"]

        def chunked():  # no Content-Length: cut off while reading
            for start in range(0, len(big), 500):
                yield big[start : start + 500].encode()

        streamed = httpx.post(f"{live.base_url}/tts", content=chunked(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and "2000 bytes" in streamed.json()["error"]["message"]
        assert httpx.post(f"{live.base_url}/tts", json={"text": TEXT}, timeout=60).status_code == 200


def test_a_client_that_hangs_up_mid_stream_leaves_the_server_serving(piper):
    slow = CountingEngine(piper, delay=0.3)
    with live_server({"piper": slow}) as live:
        with socket.create_connection(("127.0.0.1", live.http.port)) as sock:
            body = json.dumps({"text": "One here. Two here. Three here. Four here. Five here."}).encode()
            sock.sendall(b"POST /tts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            assert sock.recv(12).startswith(b"HTTP/1.1 200")
        # Had the server gone on, all five would render within 5 x 0.3 s.
        time.sleep(3)
        assert len(slow.calls) < 5, "the server rendered the whole text for a client that had left"
        assert httpx.post(f"{live.base_url}/tts", json={"text": TEXT}, timeout=60).status_code == 200


def test_token_rules(piper):
    with live_server({"piper": piper}) as live:
        # No token configured: reads work on loopback, changes are refused with the flag to set.
        assert httpx.get(f"{live.base_url}/v1/voices").status_code == 200
        refused = httpx.delete(f"{live.base_url}/v1/voices/anything")
        assert refused.status_code == 403 and "--http-token" in refused.json()["error"]["message"]
    with live_server({"piper": piper}, settings=HttpSettings(token=TOKEN, protect_reads=True)) as live:
        for method, path in (("GET", "/v1/voices"), ("GET", "/health"), ("GET", "/metrics"), ("POST", "/tts")):
            response = httpx.request(method, f"{live.base_url}{path}", json={"text": TEXT})
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"] == "Bearer"
        wrong = httpx.get(f"{live.base_url}/v1/voices", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "Wrong token" in wrong.json()["error"]["message"]
        good = {"authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{live.base_url}/v1/voices", headers=good).status_code == 200
        with pytest.raises(openai.AuthenticationError):
            openai_client(live).audio.speech.create(model="m", voice="v", input=TEXT, response_format="pcm")
        pcm = openai_client(live, TOKEN).audio.speech.create(model="m", voice="v", input=TEXT, response_format="pcm").read()
        assert_speech(pcm, 24000, TEXT)


def test_health_and_metrics(piper, tmp_path):
    broken = CountingEngine(piper)
    chain = ChainSettings(breaker_failures=1, breaker_cooldown=300)
    with live_server({"piper": broken}, cache=make_cache(tmp_path), chain=chain) as live:
        url = live.base_url
        health = httpx.get(f"{url}/health").json()
        assert health["status"] == "ready" and health["engines"]["piper"]["breaker"] == "closed"
        for _ in range(2):
            assert httpx.post(f"{url}/tts", json={"text": TEXT}, timeout=60).status_code == 200
        assert httpx.get(f"{url}/health").json()["cache"]["memory_hits"] == 1

        broken.fail_with = RuntimeError("engine down")
        failed = httpx.post(f"{url}/tts", json={"text": "Something new."}, timeout=60)
        assert failed.status_code == 503 and "engine down" in failed.json()["error"]["message"]
        down = httpx.get(f"{url}/health")
        assert down.status_code == 503 and down.json()["engines"]["piper"]["breaker"] == "open"

        metrics = httpx.get(f"{url}/metrics").text
    assert 'wyoming_indextts_http_requests_total{route="/tts",status="200"} 2.0' in metrics
    assert 'wyoming_indextts_http_requests_total{route="/tts",status="503"} 1.0' in metrics
    assert 'wyoming_indextts_http_time_to_first_audio_seconds_count{endpoint="tts"} 2.0' in metrics
    assert 'wyoming_indextts_cache_lookups_total{result="memory_hit"} 1.0' in metrics
    assert 'wyoming_indextts_engine_failures_total{engine="piper"} 1.0' in metrics
    assert 'wyoming_indextts_breaker_state{engine="piper",state="open"} 1.0' in metrics
    assert "wyoming_indextts_late_renders 0.0" in metrics


def test_a_voice_named_in_any_script_is_served(piper):
    grandma = CountingEngine(piper, name="piper", voice_name="奶奶")
    with live_server({"piper": grandma}, default_voice="奶奶") as live:
        response = httpx.post(f"{live.base_url}/tts", json={"text": TEXT, "voice": "奶奶"}, timeout=60)
        voices = httpx.get(f"{live.base_url}/v1/voices").json()["voices"]
    assert response.status_code == 200 and response.headers["x-voice"] == "%E5%A5%B6%E5%A5%B6"
    assert [voice["name"] for voice in voices] == ["奶奶"]


def test_prerender_progress_in_metrics_and_health(joe, tmp_path):
    listed = tmp_path / "announcements.txt"
    listed.write_text(f"{TEXT}\nThe dishwasher is done. The kettle has boiled.\n", encoding="utf-8")
    with live_server({"piper": joe}, cache=make_cache(tmp_path)) as live:
        assert httpx.get(f"{live.base_url}/health").json()["prerender"]["total"] == 0
        live.wyoming(TEXT)  # already cached when the run starts
        live.run(live.prerenderer.run([PrerenderList(None, listed)]))
        metrics = httpx.get(f"{live.base_url}/metrics").text
        assert "wyoming_indextts_prerender_listed 3.0" in metrics
        assert 'wyoming_indextts_prerender_sentences{result="cached"} 1.0' in metrics
        assert 'wyoming_indextts_prerender_sentences{result="rendered"} 2.0' in metrics
        assert 'wyoming_indextts_prerender_sentences{result="failed"} 0.0' in metrics

        joe.fail_with = RuntimeError("engine down")
        listed.write_text(f"{TEXT}\nThe oven is hot.\n", encoding="utf-8")
        live.run(live.prerenderer.run([PrerenderList(None, listed)]))
        status = httpx.get(f"{live.base_url}/health").json()["prerender"]
        metrics = httpx.get(f"{live.base_url}/metrics").text
    assert status == {"total": 2, "done": 2, "cached": 1, "rendered": 0, "failed": 1}
    assert 'wyoming_indextts_prerender_sentences{result="failed"} 1.0' in metrics
    assert "wyoming_indextts_prerender_listed 2.0" in metrics
