"""OpenAI's `speed` through the official `openai` client against the real server: the bundled
Piper and Kokoro voices speak faster, a faster render is cached apart from the normal one (which
keeps the key Wyoming uses), and a voice that speaks at its own pace says so in a JSON error."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import CountingEngine, make_cache
from tests.http.conftest import WAV_HEADER_BYTES, live_server

TEXT = "The garage door has been open for ten minutes."
MANDARIN = "车库门已经开了十分钟。"
JOE = "en_US-joe-medium"
XIAOXIAO = "kokoro-zf_xiaoxiao"


@pytest.fixture(scope="module")
def live(piper, kokoro, tmp_path_factory):
    clone = CountingEngine(piper, name="indextts", voice_name="grandma", languages=("en",))
    engines = {"indextts": clone, "kokoro": kokoro, "piper": piper}
    with live_server(engines, JOE, cache=make_cache(tmp_path_factory.mktemp("speed"))) as server:
        yield server


def speak(live, voice: str, text: str, speed: float) -> bytes:
    client = openai.OpenAI(base_url=f"{live.base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    wav = client.audio.speech.create(model="tts-1", voice=voice, input=text, response_format="wav", speed=speed).read()
    assert wav[:4] == b"RIFF"
    return wav[WAV_HEADER_BYTES:]


@pytest.mark.parametrize(("voice", "text"), [(JOE, TEXT), (XIAOXIAO, MANDARIN)])
def test_faster_speech_is_shorter_and_cached_apart(live, voice, text):
    fast = speak(live, voice, text, 1.5)
    normal = speak(live, voice, text, 1.0)
    # Silence at the edges, rounding of phoneme durations and Piper's duration noise (a new draw
    # every render) keep one sentence's ratio off 1.5: 1.30-1.41 seen; speed ignored gives ~1.0.
    assert 1.2 < len(normal) / len(fast) < 1.8, (len(normal), len(fast))
    assert speak(live, voice, text, 1.5) == fast  # from the cache (Piper's noise differs per render)
    # The 1.0 render is cached under the key Wyoming uses: Wyoming gets exactly those samples.
    assert live.wyoming(text, voice).audio == normal


def test_a_voice_with_its_own_pace_refuses_other_speeds(live):
    with pytest.raises(openai.BadRequestError) as caught:
        speak(live, "grandma", TEXT, 2.0)
    assert caught.value.code == "unsupported_speed" and "speaks at its own pace" in caught.value.message
    assert len(speak(live, "grandma", TEXT, 1.0)) > 0
