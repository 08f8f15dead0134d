"""HTTP work stays off the event loop Wyoming shares: while long replies are resampled and
encoded, a Wyoming describe is still answered at once; a client that leaves stops the work;
formats held whole in memory are capped in length."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from wyoming_indextts.http import speech

from tests.conftest import CountingEngine, make_cache
from tests.http.conftest import live_server

SENTENCE = "The garage door is open."
REPEATS = 120
"""About 200 s of audio, every sentence a cache hit: the reply's cost is resampling and encoding."""
DESCRIBE_BOUND = 2.5
"""Seconds; generous for a loaded 2-core machine (benchmarks/http_fuzz.py has the real
figures). Encoding these replies on the loop stalled describe for longer than this."""


def describe_while(port: int, busy: threading.Event) -> list[float]:
    """Describe round trips (a client on a loop of its own) until `busy` clears."""

    async def poll() -> list[float]:
        seconds = []
        while busy.is_set():
            started = time.monotonic()
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
                while not Info.is_type((await asyncio.wait_for(client.read_event(), 60)).type):
                    pass
            seconds.append(time.monotonic() - started)
            await asyncio.sleep(0.05)
        return seconds

    return asyncio.run(poll())


def test_describe_is_answered_while_long_replies_encode(piper, tmp_path):
    text = " ".join([SENTENCE] * REPEATS)
    with live_server({"piper": piper}, cache=make_cache(tmp_path)) as live:
        live.wyoming(SENTENCE)  # now cached
        url = f"{live.base_url}/v1/audio/speech"
        busy = threading.Event()
        busy.set()
        with ThreadPoolExecutor(1) as pool:
            latencies = pool.submit(describe_while, live.harness.port, busy)
            try:
                with httpx.stream("POST", url, json={"input": text, "response_format": "pcm"}, timeout=120) as leaving:
                    assert leaving.status_code == 200
                    next(leaving.iter_raw())  # then hangs up
                for name in ("mp3", "opus"):
                    whole = httpx.post(url, json={"input": text, "response_format": name}, timeout=300)
                    assert whole.status_code == 200 and len(whole.content) > 100_000, name
            finally:
                busy.clear()
            seconds = latencies.result(120)
    assert len(seconds) >= 3
    assert max(seconds) < DESCRIBE_BOUND, f"describe took {max(seconds):.2f} s while HTTP replies were encoded"


def test_a_client_that_leaves_a_held_reply_stops_its_render(piper):
    slow = CountingEngine(piper, delay=0.3)
    sentences = " ".join(f"Sentence number {n} is here." for n in ("one", "two", "three", "four", "five", "six"))
    with live_server({"piper": slow}) as live:
        with socket.create_connection(("127.0.0.1", live.http.port)) as sock:
            body = f'{{"input": "{sentences}", "response_format": "mp3"}}'.encode()
            sock.sendall(
                b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            time.sleep(0.8)  # an mp3 reply is sent whole: nothing arrives before the client leaves
        left = 'wyoming_indextts_http_requests_total{route="/v1/audio/speech",status="499"} 1.0'
        deadline = time.monotonic() + 60
        while left not in httpx.get(f"{live.base_url}/metrics").text:  # the request has ended
            assert time.monotonic() < deadline, "the request went on after its client left"
            time.sleep(0.2)
        assert len(slow.calls) < 6, "the server rendered the whole text for a client that had left"


def test_text_too_long_for_a_held_format_is_refused_before_rendering(piper):
    counting = CountingEngine(piper)
    with live_server({"piper": counting}) as live:
        url = f"{live.base_url}/v1/audio/speech"
        refused = httpx.post(url, json={"input": "word " * 5000, "response_format": "flac"}, timeout=60)
        assert refused.status_code == 413, refused.text
        error = refused.json()["error"]
        assert error["code"] == "audio_too_long" and "wav or pcm" in error["message"]
        assert counting.calls == []
        # Streamed formats hold nothing: the same text would stream (only its start is read here).
        with httpx.stream("POST", url, json={"input": "word " * 5000, "response_format": "pcm"}, timeout=60) as streamed:
            assert streamed.status_code == 200


def test_audio_longer_than_a_held_format_allows_gets_413(piper, monkeypatch):
    monkeypatch.setattr(speech, "MAX_HELD_SECONDS", 3)
    with live_server({"piper": piper}) as live:
        url = f"{live.base_url}/v1/audio/speech"
        text = "The front door is open. The back door is open. The garage door is open. The kitchen window is open."
        too_long = httpx.post(url, json={"input": text, "response_format": "mp3"}, timeout=60)
        assert too_long.status_code == 413 and too_long.json()["error"]["code"] == "audio_too_long"
        assert httpx.post(url, json={"input": "Hi.", "response_format": "mp3"}, timeout=60).status_code == 200
