"""What a stopping server does with renders still running (issue 21, item 7), in-process: the
renders are cancelled and their threads joined before the engines close; one stuck inside its
engine keeps the engines open (closing them under a running ONNX Runtime call would crash it),
and no render starts once the stop began. The real process under SIGTERM/SIGINT is in
tests/indextts/test_clean_stop.py."""

from __future__ import annotations

import asyncio

import pytest

from wyoming_indextts.service import assemble
from wyoming_indextts.synthesizer import NoAudioError

from .conftest import CountingEngine


async def start_hung_render(service, engine: CountingEngine) -> asyncio.Task:
    voice = service.catalogue.default_voice

    async def listen() -> None:
        async for _ in service.synthesizer.speak("The oven is hot.", voice, voice.output_format):
            pass

    task = asyncio.create_task(listen())
    async with asyncio.timeout(30):
        while not engine.calls:
            await asyncio.sleep(0.02)
    return task


async def test_a_stop_cancels_renders_joins_them_then_closes_the_engines(piper):
    engine = CountingEngine(piper, delay=1.0)  # inside the engine for a second, then done
    service = assemble({"piper": engine})
    task = await start_hung_render(service, engine)
    assert await service.stop(timeout=30) is True
    assert engine.release.is_set()  # closed (CountingEngine.close sets it), after the thread ended
    task.cancel()
    voice = service.catalogue.default_voice
    with pytest.raises(NoAudioError, match="the server is stopping"):
        async for _ in service.synthesizer.speak("Another sentence.", voice, voice.output_format):
            pass
    assert engine.calls == ["The oven is hot."]  # nothing started after the stop


async def test_a_render_stuck_in_its_engine_leaves_the_engines_open(piper):
    engine = CountingEngine(piper)
    engine.hang.set()  # waits for `release` (30 s): a long native call that cannot be cut short
    service = assemble({"piper": engine})
    task = await start_hung_render(service, engine)
    try:
        assert await service.stop(timeout=0.5) is False
        assert not engine.release.is_set()  # not closed under the running render
    finally:
        engine.release.set()
        task.cancel()
