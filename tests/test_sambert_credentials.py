"""Sambert's credentials against the NLS stand-in on loopback: the token's life (cached,
renewed ahead of its ExpireTime, renewed once when rejected), the signature the token service
checks, secrets kept out of logs and exceptions, and settings from the environment or a file."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import traceback
import urllib.parse
from pathlib import Path

import pytest

from tests.nls_standin import (
    DOCUMENTED_STATUSES,
    NlsStandIn,
    expected_pcm,
    nls_standin,  # noqa: F401  (the fixture)
    pop_signature,
)
from wyoming_indextts.engines.base import EngineError
from wyoming_indextts.engines.sambert import SambertEngine, SambertSettings

from .test_sambert import FakeClock, engine, speak  # noqa: F401  (engine: the fixture)


# -- tokens ---------------------------------------------------------------------------------


def test_token_is_cached_across_requests_and_threads(nls_standin: NlsStandIn,
                                                     engine: SambertEngine) -> None:
    results: list[bytes] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results.append(speak(engine, f"第{i}句。"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 6
    speak(engine, "再来一句。")
    assert len(nls_standin.token_requests) == 1
    assert {r.token for r in nls_standin.tts_requests} == set(nls_standin.issued_tokens)


def test_warm_up_fetches_the_token_and_reports_bad_credentials(nls_standin: NlsStandIn,
                                                              engine: SambertEngine) -> None:
    engine.warm_up()
    assert len(nls_standin.token_requests) == 1 and nls_standin.tts_requests == []
    speak(engine, "一。")
    assert len(nls_standin.token_requests) == 1
    broken = SambertEngine(nls_standin.settings(access_key_secret="wrong"))
    with pytest.raises(EngineError, match="rejected the AccessKey secret"):
        broken.warm_up()
    broken.close()


def test_token_is_renewed_ahead_of_expire_time(nls_standin: NlsStandIn) -> None:
    clock = FakeClock()
    engine = SambertEngine(nls_standin.settings(token_refresh_margin=600), clock=clock)
    try:
        speak(engine, "一。")
        clock.now += 3600 - 600 - 60  # a minute before the margin starts
        speak(engine, "二。")
        assert len(nls_standin.token_requests) == 1
        clock.now += 120  # inside the margin, still before ExpireTime
        speak(engine, "三。")
        assert len(nls_standin.token_requests) == 2
        tokens = [r.token for r in nls_standin.tts_requests]
        assert tokens[0] == tokens[1] != tokens[2]
    finally:
        engine.close()


def test_short_lived_token_is_renewed_halfway(nls_standin: NlsStandIn) -> None:
    nls_standin.token_lifetime = 100  # shorter than the margin: renew at half-life instead
    clock = FakeClock()
    engine = SambertEngine(nls_standin.settings(token_refresh_margin=600), clock=clock)
    try:
        speak(engine, "一。")
        clock.now += 40
        speak(engine, "二。")
        assert len(nls_standin.token_requests) == 1
        clock.now += 20
        speak(engine, "三。")
        assert len(nls_standin.token_requests) == 2
    finally:
        engine.close()


def test_token_expired_mid_run_is_renewed_once_and_retried(nls_standin: NlsStandIn,
                                                            engine: SambertEngine) -> None:
    speak(engine, "一。")
    nls_standin.expire_tokens()
    assert speak(engine, "二。") == expected_pcm("二。", 16000)
    assert [r.answer for r in nls_standin.tts_requests] == ["audio", "status 40000001", "audio"]
    assert len(nls_standin.token_requests) == 2
    old, rejected, new = (r.token for r in nls_standin.tts_requests)
    assert old == rejected != new


def test_token_rejected_after_renewal_is_an_error(nls_standin: NlsStandIn,
                                                  engine: SambertEngine) -> None:
    nls_standin.fail_tts(40000001, times=None)
    with pytest.raises(EngineError, match="NLS_APPKEY belongs to the same") as info:
        speak(engine, "一。")
    assert "40000001" in str(info.value)
    assert len(nls_standin.token_requests) == 2  # one renewal, not a loop
    assert len(nls_standin.tts_requests) == 2


# -- credentials --------------------------------------------------------------------------


def test_wrong_secret_is_an_actionable_error(nls_standin: NlsStandIn) -> None:
    engine = SambertEngine(nls_standin.settings(access_key_secret="not-the-secret"))
    try:
        with pytest.raises(EngineError, match="rejected the AccessKey secret.*"
                                              "ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
            speak(engine, "一。")
        assert nls_standin.token_requests[0].answer == "SignatureDoesNotMatch"
    finally:
        engine.close()


def test_unknown_access_key_is_an_actionable_error(nls_standin: NlsStandIn) -> None:
    engine = SambertEngine(nls_standin.settings(access_key_id="LTAI5tNobodyKnowsMe99"))
    try:
        with pytest.raises(EngineError, match="does not know AccessKey ID LTAI…Me99.*"
                                              "ALIBABA_CLOUD_ACCESS_KEY_ID"):
            speak(engine, "一。")
        assert nls_standin.token_requests[0].answer == "InvalidAccessKeyId.NotFound"
    finally:
        engine.close()


def _create_token_raw(port: int, params: dict[str, str]) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", "/?" + urllib.parse.urlencode(params))
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_standin_checks_signature_and_nonce_by_the_documented_algorithm(
        nls_standin: NlsStandIn) -> None:
    params = {
        "Version": "2019-02-28", "Action": "CreateToken", "Format": "JSON",
        "RegionId": "cn-shanghai", "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "SignatureMethod": "HMAC-SHA1", "SignatureType": "", "SignatureVersion": "1.0",
        "SignatureNonce": "nonce-1", "AccessKeyId": nls_standin.access_key_id,
    }
    good = dict(params, Signature=pop_signature("POST", params, nls_standin.access_key_secret))
    status, answer = _create_token_raw(nls_standin.port, good)
    assert status == 200 and answer["Token"]["Id"] and answer["Token"]["ExpireTime"] > time.time()
    assert set(answer) == {"NlsRequestId", "RequestId", "Token"}

    status, answer = _create_token_raw(nls_standin.port, good)  # same nonce again
    assert (status, answer["Code"]) == (400, "SignatureNonceUsed")

    bad = dict(params, SignatureNonce="nonce-2",
               Signature=pop_signature("GET", params, nls_standin.access_key_secret))
    status, answer = _create_token_raw(nls_standin.port, bad)
    assert (status, answer["Code"]) == (400, "SignatureDoesNotMatch")
    assert set(answer) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert "server string to sign is:POST&%2F&AccessKeyId%3D" in answer["Message"]


def test_secrets_never_reach_logs_or_exceptions(nls_standin: NlsStandIn, caplog,
                                                monkeypatch) -> None:
    monkeypatch.setenv("DEBUG", "sdk")  # the SDK's HTTP debug output, too
    caplog.set_level(logging.DEBUG)
    settings = nls_standin.settings(read_timeout=0.3)
    texts: list[str] = []

    def attempt(engine: SambertEngine, text: str = "一。") -> None:
        try:
            speak(engine, text)
        except EngineError as exc:
            texts.append("".join(traceback.format_exception(exc)))

    engine = SambertEngine(settings)
    try:
        attempt(engine)
        nls_standin.fail_tts(40000001, times=None)  # the gateway quotes the token back
        attempt(engine)
        nls_standin.reset()
        for status in DOCUMENTED_STATUSES:
            nls_standin.fail_tts(status, times=3)
            attempt(engine)
        nls_standin.reset()
        for kind in ("html", "badjson", "nostatus", "octet"):
            nls_standin.garbage_tts(kind)
            attempt(engine)
        nls_standin.hang_tts()
        attempt(engine)
        nls_standin.cut_tts()
        attempt(engine)
        nls_standin.expire_tokens()
        attempt(engine)
        nls_standin.throttle_token(times=1)
        nls_standin.expire_tokens()
        attempt(engine)
        nls_standin.garbage_token()
        nls_standin.expire_tokens()
        attempt(engine)
    finally:
        engine.close()
    for wrong in (dict(access_key_secret="wrong-" + settings.access_key_secret),
                  dict(access_key_id="LTAI5tSomebodyElse0042")):
        other = SambertEngine(nls_standin.settings(**wrong))
        attempt(other)
        other.close()

    assert len(texts) >= 20  # every path above but the successes raised
    secrets = [settings.access_key_secret, *nls_standin.issued_tokens]
    assert len(secrets) >= 4
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "Response-body" in logged  # the SDK did log the CreateToken answer…
    for secret in secrets:
        assert secret not in logged  # …but scrubbed
        for text in texts:
            assert secret not in text
    assert repr(settings).count(settings.access_key_secret) == 0


# -- settings ----------------------------------------------------------------------------

CREDS = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tFromSomewhere01",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "a-very-secret-secret",
    "NLS_APPKEY": "MyAppkey",
}


def test_from_env_variables() -> None:
    settings = SambertSettings.from_env({**CREDS, "NLS_GATEWAY_URL": "http://gw/stream/v1/tts",
                                         "UNRELATED": "x"}, None)
    assert settings is not None
    assert (settings.access_key_id, settings.access_key_secret, settings.appkey) == (
        "LTAI5tFromSomewhere01", "a-very-secret-secret", "MyAppkey")
    assert settings.gateway_url == "http://gw/stream/v1/tts"
    assert settings.region == "cn-shanghai"
    assert settings.token_domain == "nls-meta.cn-shanghai.aliyuncs.com"
    assert "a-very-secret-secret" not in repr(settings)


def test_from_env_json_file(tmp_path: Path) -> None:
    path = tmp_path / "nls.json"
    path.write_text(json.dumps(CREDS))
    settings = SambertSettings.from_env({}, path)
    assert settings is not None and settings.appkey == "MyAppkey"
    # The environment wins over the file, key by key.
    settings = SambertSettings.from_env({"NLS_APPKEY": "FromEnv"}, path)
    assert settings is not None and settings.appkey == "FromEnv"
    assert settings.access_key_secret == "a-very-secret-secret"


def test_from_env_key_value_file(tmp_path: Path) -> None:
    path = tmp_path / "nls.env"
    path.write_text(
        "# Alibaba Cloud credentials\n\n"
        "export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tFromSomewhere01\n"
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET = \"a-very-secret-secret\"\n"
        "NLS_APPKEY='MyAppkey'\n"
    )
    settings = SambertSettings.from_env({}, path)
    assert settings is not None
    assert (settings.access_key_id, settings.access_key_secret, settings.appkey) == (
        "LTAI5tFromSomewhere01", "a-very-secret-secret", "MyAppkey")


def test_from_env_not_configured_is_none(tmp_path: Path) -> None:
    assert SambertSettings.from_env({}, None) is None
    assert SambertSettings.from_env({"ALIBABA_CLOUD_ACCESS_KEY_ID": "  "}, None) is None
    empty = tmp_path / "empty.env"
    empty.write_text("# nothing yet\n")
    assert SambertSettings.from_env({}, empty) is None


def test_from_env_errors_name_keys_never_values(tmp_path: Path) -> None:
    partial = {k: v for k, v in CREDS.items() if k != "NLS_APPKEY"}
    with pytest.raises(ValueError, match="NLS_APPKEY missing") as info:
        SambertSettings.from_env(partial, None)
    assert "a-very-secret-secret" not in str(info.value)

    broken = tmp_path / "broken.json"
    broken.write_text('{"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "a-very-secret-secret",')
    with pytest.raises(ValueError, match="not valid JSON") as info:
        SambertSettings.from_env({}, broken)
    assert "a-very-secret-secret" not in str(info.value)

    garbled = tmp_path / "garbled.env"
    garbled.write_text("a-very-secret-secret\n")
    with pytest.raises(ValueError, match="line 1: expected KEY=VALUE") as info:
        SambertSettings.from_env({}, garbled)
    assert "a-very-secret-secret" not in str(info.value)

    with pytest.raises(ValueError, match="cannot read"):
        SambertSettings.from_env({}, tmp_path / "missing.env")


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="sample_rate must be 8000 or 16000"):
        SambertSettings("id", "secret", "appkey", sample_rate=22050)
    with pytest.raises(ValueError, match="volume.*speech_rate"):
        SambertSettings("id", "secret", "appkey", volume=101, speech_rate=501)
