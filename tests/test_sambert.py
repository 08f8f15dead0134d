"""The Sambert engine against the NLS stand-in: the real SDK and http.client over real sockets.

The gateway's behaviour against the stand-in, case by case (the token's life and the
credentials are in test_sambert_credentials.py).
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from tests.nls_standin import (
    DOCUMENTED_STATUSES,
    KNOWN_VOICES,
    NlsStandIn,
    expected_pcm,
    nls_standin,  # noqa: F401  (the fixture)
)
from wyoming_indextts.engines.base import EngineError
from wyoming_indextts.engines.sambert import SambertEngine, split_text

ENGLISH = (
    "The washing machine has finished its cycle. Please remember to take the laundry out "
    "before it starts to smell! The living room window is still open, and it is going to rain "
    "in about twenty minutes; you may want to close it. Tomorrow's forecast: sunny, with a high "
    "of 24 degrees and a light breeze from the west. Your next appointment is at 9:30, a "
    "dentist visit, which is about fifteen minutes away by car if traffic is normal. The front "
    "door has been unlocked for more than an hour. Should I lock it for you now? Good night."
)
CHINESE = (
    "今天的天气非常好，阳光明媚，适合出门散步。客厅的灯已经关闭，卧室的空调设置为二十六度。"
    "明天早上七点会有小雨，请记得带伞。您的快递已经送到门口，请尽快取回。"
) * 4


class FakeClock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(nls_standin: NlsStandIn) -> Iterator[SambertEngine]:
    eng = SambertEngine(nls_standin.settings())
    yield eng
    eng.close()


def speak(engine: SambertEngine, text: str, voice_name: str = "sambert-xiaoyun") -> bytes:
    voice = next(v for v in engine.voices() if v.name == voice_name)
    return b"".join(engine.synthesize(text, voice))


def zh(engine: SambertEngine):
    voice = engine.voice_for_language("zh")
    assert voice is not None
    return voice


# -- happy path ---------------------------------------------------------------------------


def test_happy_path_streams_exact_pcm(nls_standin: NlsStandIn, engine: SambertEngine) -> None:
    text = "客厅的灯已经关闭。"
    chunks = list(engine.synthesize(text, zh(engine)))
    assert b"".join(chunks) == expected_pcm(text, 16000)
    assert len(b"".join(chunks)) == round(len(text) * 0.05 * 16000) * 2
    # Streamed in pieces, each of whole int16 samples although the server's chunks are odd.
    assert len(chunks) > 1
    assert all(len(chunk) % 2 == 0 for chunk in chunks)
    [request] = nls_standin.tts_requests
    assert request.method == "POST"
    assert request.params == {
        "appkey": nls_standin.appkey, "token": nls_standin.issued_tokens[0], "text": text,
        "format": "pcm", "sample_rate": 16000, "voice": "xiaoyun", "volume": 50,
        "speech_rate": 0, "pitch_rate": 0,
    }


def test_sample_rate_8000_and_voice_options(nls_standin: NlsStandIn) -> None:
    engine = SambertEngine(nls_standin.settings(sample_rate=8000, volume=80, speech_rate=-100,
                                                pitch_rate=50))
    try:
        voice = engine.voice_for_language("en")
        assert voice is not None and voice.sample_rate == 8000
        assert b"".join(engine.synthesize("Hello there.", voice)) == expected_pcm(
            "Hello there.", 8000)
        params = nls_standin.tts_requests[0].params
        assert (params["sample_rate"], params["volume"], params["speech_rate"],
                params["pitch_rate"], params["voice"]) == (8000, 80, -100, 50, "abby")
    finally:
        engine.close()


def test_kept_alive_connection_is_reused(nls_standin: NlsStandIn, engine: SambertEngine) -> None:
    speak(engine, "一。")
    speak(engine, "二。")
    first, second = nls_standin.tts_requests
    assert first.client_port == second.client_port


def test_connection_closed_by_gateway_is_replaced(nls_standin: NlsStandIn,
                                                  engine: SambertEngine) -> None:
    nls_standin.drop_keepalive()
    speak(engine, "一。")
    time.sleep(0.05)  # let the server's close reach our socket
    assert speak(engine, "二。") == expected_pcm("二。", 16000)
    assert [r.answer for r in nls_standin.tts_requests] == ["audio", "audio"]
    first, second = nls_standin.tts_requests
    assert first.client_port != second.client_port


def test_one_hung_request_does_not_block_other_threads(nls_standin: NlsStandIn) -> None:
    engine = SambertEngine(nls_standin.settings(read_timeout=2.0))
    try:
        engine.warm_up()
        nls_standin.hang_tts()
        outcome: list[BaseException] = []
        hung = threading.Thread(target=lambda: outcome.extend(_raises(engine, "一。")))
        hung.start()
        deadline = time.monotonic() + 5
        while not any(r.answer == "hang" for r in nls_standin.tts_requests):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert speak(engine, "二。") == expected_pcm("二。", 16000)
        assert hung.is_alive()  # still waiting for its answer while the other one finished
        hung.join()
        assert len(outcome) == 1 and isinstance(outcome[0], EngineError)
    finally:
        engine.close()


def _raises(engine: SambertEngine, text: str) -> list[BaseException]:
    try:
        speak(engine, text)
    except BaseException as exc:  # collected for the assertion in the caller
        return [exc]
    return []


def test_standin_speaks_get_with_header_token_and_wav(nls_standin: NlsStandIn,
                                                      engine: SambertEngine) -> None:
    engine.warm_up()
    [token] = nls_standin.issued_tokens
    text = "Hello, 世界 & friends"
    query = urllib.parse.urlencode({"appkey": nls_standin.appkey, "text": text, "format": "wav",
                                    "sample_rate": "8000"}, quote_via=urllib.parse.quote)
    conn = http.client.HTTPConnection("127.0.0.1", nls_standin.port, timeout=5)
    try:
        conn.request("GET", f"/stream/v1/tts?{query}", headers={"X-NLS-Token": token})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.getheader("Content-Type") == "audio/mpeg"
    assert body[:4] == b"RIFF" and body[44:] == expected_pcm(text, 8000)
    assert nls_standin.tts_requests[-1].text == text


# -- splitting ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [ENGLISH, CHINESE], ids=["english", "chinese"])
def test_long_text_is_split_at_sentence_boundaries(nls_standin: NlsStandIn,
                                                   engine: SambertEngine, text: str) -> None:
    assert len(text) > 300
    audio = speak(engine, text)
    pieces = [r.text for r in nls_standin.tts_requests]
    assert len(pieces) >= 2
    assert all(len(piece) <= 300 for piece in pieces)
    assert "".join(pieces) == text
    for piece in pieces[:-1]:
        assert piece.rstrip()[-1] in ".!?。！？", piece
    assert audio == b"".join(expected_pcm(piece, 16000) for piece in pieces)


def test_split_falls_back_to_clauses_then_words_then_hard_cut() -> None:
    clauses = "，".join(["这是一个没有句号的很长的分句"] * 40)
    pieces = split_text(clauses)
    assert "".join(pieces) == clauses and all(len(p) <= 300 for p in pieces)
    assert all(p.endswith("，") for p in pieces[:-1])

    words = " ".join(["wonderful"] * 100)
    pieces = split_text(words)
    assert "".join(pieces) == words and all(len(p) <= 300 for p in pieces)
    assert all(p.endswith(" ") for p in pieces[:-1])  # never inside a word

    run = "啊" * 650
    assert split_text(run) == ["啊" * 300, "啊" * 300, "啊" * 50]

    numbers = "The price rose from 1,000.50 to 2,000.75 today " * 10
    assert all(not p.endswith(("1,", "2,", "1,000.", "2,000.")) for p in split_text(numbers))
    assert split_text("") == [] and split_text("short.") == ["short."]


# -- gateway statuses -----------------------------------------------------------------------

ADVICE = {
    40000000: "client error",
    40000002: "could not parse the request",
    40000003: "out of range",
    40000004: "idle timeout",
    40000005: "too many requests",
    40000010: "free trial has expired",
    40020105: "appkey does not exist",
}


def test_every_documented_status_is_covered() -> None:
    assert set(ADVICE) | {40000001, 50000000, 50000001} == set(DOCUMENTED_STATUSES)


@pytest.mark.parametrize("status", sorted(ADVICE))
def test_client_statuses_raise_actionable_errors_without_retry(
        nls_standin: NlsStandIn, engine: SambertEngine, status: int) -> None:
    nls_standin.fail_tts(status)
    with pytest.raises(EngineError) as info:
        speak(engine, "一。")
    message = str(info.value)
    assert str(status) in message and ADVICE[status] in message
    assert "request id" in message and nls_standin.tts_requests[0].answer == f"status {status}"
    assert len(nls_standin.tts_requests) == 1
    # The stand-in and the engine both carry on after an error.
    assert speak(engine, "二。") == expected_pcm("二。", 16000)


def test_unknown_appkey(nls_standin: NlsStandIn) -> None:
    engine = SambertEngine(nls_standin.settings(appkey="NotMyAppkey"))
    try:
        with pytest.raises(EngineError, match="appkey does not exist.*NLS_APPKEY"):
            speak(engine, "一。")
        assert nls_standin.tts_requests[0].answer == "status 40020105"
    finally:
        engine.close()


@pytest.mark.parametrize("status", [50000000, 50000001])
def test_server_statuses_are_retried_with_backoff(nls_standin: NlsStandIn, status: int) -> None:
    sleeps: list[float] = []
    engine = SambertEngine(nls_standin.settings(server_retries=2, retry_backoff=0.5),
                           sleep=sleeps.append)
    try:
        nls_standin.fail_tts(status, times=2)
        assert speak(engine, "一。") == expected_pcm("一。", 16000)
        assert sleeps == [0.5, 1.0]
        assert [r.answer for r in nls_standin.tts_requests] == [f"status {status}"] * 2 + ["audio"]
    finally:
        engine.close()


def test_server_status_retries_are_bounded(nls_standin: NlsStandIn) -> None:
    sleeps: list[float] = []
    engine = SambertEngine(nls_standin.settings(server_retries=2), sleep=sleeps.append)
    try:
        nls_standin.fail_tts(50000000, times=None)
        with pytest.raises(EngineError, match="after 3 attempts.*Alibaba Cloud's side"):
            speak(engine, "一。")
        assert len(nls_standin.tts_requests) == 3 and len(sleeps) == 2
    finally:
        engine.close()


def test_throttling_is_reported_not_retried(nls_standin: NlsStandIn,
                                            engine: SambertEngine) -> None:
    nls_standin.throttle_tts()
    for _ in range(2):
        with pytest.raises(EngineError, match="too many requests.*lower the number of workers"):
            speak(engine, "一。")
    assert len(nls_standin.tts_requests) == 2


def test_token_service_throttling(nls_standin: NlsStandIn, engine: SambertEngine) -> None:
    nls_standin.throttle_token()
    with pytest.raises(EngineError, match="throttling.*wait a minute"):
        speak(engine, "一。")
    assert nls_standin.tts_requests == []


# -- broken answers -------------------------------------------------------------------------


def test_hanging_gateway_times_out(nls_standin: NlsStandIn) -> None:
    engine = SambertEngine(nls_standin.settings(read_timeout=0.3))
    try:
        speak(engine, "一。")  # token fetched, connection warm
        nls_standin.hang_tts()
        started = time.monotonic()
        with pytest.raises(EngineError, match="did not answer within 0.3 s"):
            speak(engine, "二。")
        assert time.monotonic() - started < 5
        nls_standin.release()
        assert speak(engine, "三。") == expected_pcm("三。", 16000)
    finally:
        engine.close()


def test_hanging_token_service_times_out(nls_standin: NlsStandIn) -> None:
    engine = SambertEngine(nls_standin.settings(read_timeout=0.3))
    try:
        nls_standin.hang_token()
        started = time.monotonic()
        with pytest.raises(EngineError, match="could not get an NLS token"):
            speak(engine, "一。")
        assert time.monotonic() - started < 5
        assert speak(engine, "二。") == expected_pcm("二。", 16000)
    finally:
        engine.close()


def test_unreachable_gateway(nls_standin: NlsStandIn) -> None:
    engine = SambertEngine(nls_standin.settings(gateway_url="http://127.0.0.1:1/stream/v1/tts"))
    try:
        with pytest.raises(EngineError, match="could not connect to the NLS gateway"):
            speak(engine, "一。")
    finally:
        engine.close()


def test_cut_short_response_after_streaming_some_audio(nls_standin: NlsStandIn,
                                                       engine: SambertEngine) -> None:
    text = "这句话会在中途被切断。"
    nls_standin.cut_tts()
    received: list[bytes] = []
    with pytest.raises(EngineError, match="cut short"):
        for chunk in engine.synthesize(text, zh(engine)):
            received.append(chunk)
    # Audio was yielded as it arrived, before the break was noticed.
    partial = b"".join(received)
    assert 0 < len(partial) < len(expected_pcm(text, 16000))
    assert expected_pcm(text, 16000).startswith(partial)
    assert speak(engine, text) == expected_pcm(text, 16000)


@pytest.mark.parametrize("kind", ["html", "badjson", "nostatus", "octet"])
def test_garbage_answers(nls_standin: NlsStandIn, engine: SambertEngine, kind: str) -> None:
    nls_standin.garbage_tts(kind)
    with pytest.raises(EngineError, match="neither audio nor an NLS status.*NLS_GATEWAY_URL"):
        speak(engine, "一。")
    assert speak(engine, "二。") == expected_pcm("二。", 16000)


def test_garbage_from_token_service(nls_standin: NlsStandIn, engine: SambertEngine) -> None:
    nls_standin.garbage_token()
    with pytest.raises(EngineError, match="not a token"):
        speak(engine, "一。")
    assert speak(engine, "二。") == expected_pcm("二。", 16000)


def test_closed_engine_refuses(engine: SambertEngine) -> None:
    speak(engine, "一。")
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        speak(engine, "二。")


def test_foreign_voice_is_refused(engine: SambertEngine) -> None:
    from wyoming_indextts.engines.base import Voice

    with pytest.raises(EngineError, match="not a Sambert voice"):
        list(engine.synthesize("hi", Voice("xiaoyun", "piper", 16000, ("zh",))))


# -- voices --------------------------------------------------------------------------------


def test_voices_and_language_defaults(engine: SambertEngine) -> None:
    voices = engine.voices()
    names = [v.name for v in voices]
    assert len(names) == len(set(names)) and all(n.startswith("sambert-") for n in names)
    assert {v.extra["voice"] for v in voices} == KNOWN_VOICES
    assert all(v.engine == "sambert" and v.sample_rate == 16000 and v.description
               for v in voices)
    assert {lang for v in voices for lang in v.languages} == {"zh", "en", "yue", "ja"}
    picks = {lang: (engine.voice_for_language(lang) or None) for lang in
             ("zh", "zh_CN", "en", "en-US", "en_GB", "yue", "zh-HK", "ja", "ja-JP", "fr")}
    assert {k: v.name if v else None for k, v in picks.items()} == {
        "zh": "sambert-xiaoyun", "zh_CN": "sambert-xiaoyun", "en": "sambert-abby",
        "en-US": "sambert-abby", "en_GB": "sambert-emily", "yue": "sambert-shanshan",
        "zh-HK": "sambert-shanshan", "ja": "sambert-tomoka", "ja-JP": "sambert-tomoka",
        "fr": None}
    assert picks["en"].languages == ("en",)  # a native English voice
    # A caller that takes the first voice listing a language gets the same default.
    for lang in ("zh", "en", "yue", "ja"):
        first = next(v for v in voices if lang in v.languages)
        assert first == engine.voice_for_language(lang)


def test_fingerprint_covers_voice_and_options(nls_standin: NlsStandIn) -> None:
    def fingerprints(**overrides) -> dict[str, str]:
        eng = SambertEngine(nls_standin.settings(**overrides))
        try:
            return {v.name: v.fingerprint for v in eng.voices()}
        finally:
            eng.close()

    base = fingerprints()
    assert len(set(base.values())) == len(base)
    assert fingerprints() == base
    for change in (dict(volume=60), dict(speech_rate=10), dict(pitch_rate=-10),
                   dict(sample_rate=8000)):
        changed = fingerprints(**change)
        assert all(changed[name] != base[name] for name in base), change
    # Timeouts and credentials do not change the sound.
    assert fingerprints(read_timeout=9.0, appkey="other") == base
