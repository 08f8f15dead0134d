"""Execution providers on a machine without a GPU: a missing provider falls back to the CPU
with a message that names the package to install, the choice is reported at start-up, and the
chosen providers reach every session (shown with the CPU wheel's second provider, Azure)."""

from __future__ import annotations

import logging

import onnxruntime
import pytest

from wyoming_indextts.engines import sessions
from wyoming_indextts.engines.piper import PiperEngine

from .conftest import assert_speech
from .test_cli import server_process
from .test_remote import ask

TEXT = "The porch light is on."


@pytest.fixture
def restore_providers():
    before = sessions.providers()
    yield
    sessions._providers = before


@pytest.mark.parametrize(("name", "package"), [("cuda", "onnxruntime-gpu"), ("openvino", "onnxruntime-openvino")])
def test_a_missing_provider_falls_back_to_the_cpu_and_says_what_to_install(name, package, restore_providers, caplog):
    if sessions.PROVIDERS[name] in onnxruntime.get_available_providers():
        pytest.skip(f"this onnxruntime has {name}")
    caplog.set_level(logging.INFO)
    assert sessions.use_provider(name) == "cpu"
    assert sessions.providers() == [sessions.CPU]
    assert f"Execution provider {name} is not in this onnxruntime" in caplog.text and package in caplog.text


def test_a_provider_that_does_not_start_is_noticed():
    assert sessions._probe(["NoSuchExecutionProvider", sessions.CPU]) == sessions.CPU
    assert sessions._probe(["AzureExecutionProvider", sessions.CPU]) == "AzureExecutionProvider"


def test_the_chosen_providers_reach_the_bundled_voices_sessions(restore_providers):
    sessions._providers = ["AzureExecutionProvider", sessions.CPU]
    engine = PiperEngine.load()
    try:
        [loaded] = engine._voices.values()
        assert loaded.streaming is not None
        for session in (loaded.streaming.front, loaded.streaming.decoder):
            assert session.get_providers() == ["AzureExecutionProvider", sessions.CPU]
        pcm = b"".join(engine.synthesize(TEXT, loaded.voice))
        assert_speech(pcm, loaded.voice.sample_rate, TEXT)
    finally:
        engine.close()


async def test_the_server_reports_its_provider_and_speaks_on_the_cpu_fallback(tmp_path):
    if "OpenVINOExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has OpenVINO")
    async with server_process(tmp_path / "server.log", "--data-dir", str(tmp_path), "--provider", "openvino") as port:
        response = await ask(port, TEXT)
    assert_speech(response.audio, response.rate, TEXT)
    log_text = (tmp_path / "server.log").read_text()
    assert "Execution provider openvino is not in this onnxruntime" in log_text
    assert "onnxruntime-openvino" in log_text
    assert "ONNX Runtime on CPUExecutionProvider" in log_text  # in the start-up report
