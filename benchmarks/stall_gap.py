"""Silent gaps under an engine that stalls mid-sentence, and renders shared by identical
requests (issue 21, items 2 and 8): the real server, a real Wyoming client over loopback TCP.

    .venv/bin/python benchmarks/stall_gap.py [--requests 12] [--deadline 2.0] [--clients 40]

Phase A: the primary voice ("indextts", voice "clone-en") yields the first tenth of its real
audio (the bundled Piper voice's) at once, then stalls for 30 s, on every sentence; the bundled
voice is the fallback. The breaker is kept out of the way, so every reply meets a stall. Each reply (several sentences from the shared texts) is timed chunk by
chunk as the client receives it: the longest silence a listener playing the audio as it
arrives would hear (request to first chunk, then whenever a chunk comes after the audio
before it has played out). Target: no gap longer than the deadline + 1 s, no sentence missing.

Phase B: `--clients` clients ask for the same text at the same moment, with no cache, so only
the merging of renders in flight can spare the engine: renders the engine ran per sentence
(target: 1). Results go into RESULTS.md (`stall_gap`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

from wyoming.audio import AudioChunk
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeVoice

from _common import add_texts_argument, text_lines
from _report import LoadMonitor, command_line, machine_description, timestamp, write_section

SECTION = "stall_gap"
PRIMARY_VOICE = "clone-en"
STALL = 30.0
HEAD = 0.1


class StallingPrimary:
    """Speaks through the bundled Piper voice: the first `HEAD` of a sentence at once (rendered
    ahead, in `prepare`, so its first audio is never late), then a stall of `STALL` seconds
    (released at the end of the run), then the rest."""

    def __init__(self, piper) -> None:  # noqa: ANN001 - the loaded PiperEngine
        from wyoming_indextts.engines.base import INDEXTTS

        self.name = INDEXTTS
        self.piper = piper
        self.piper_voice = piper.voices()[0]
        self.voice = replace(self.piper_voice, name=PRIMARY_VOICE, engine=self.name)
        self.release = threading.Event()
        self.audio: dict[str, bytes] = {}

    def prepare(self, sentences: list[str]) -> None:
        for sentence in sentences:
            self.audio[sentence] = b"".join(self.piper.synthesize(sentence, self.piper_voice))

    def voices(self) -> Sequence:
        return [self.voice]

    def voice_for_language(self, language: str) -> None:
        return None

    def synthesize(self, text: str, voice, *, opening: bool = True) -> Iterator[bytes]:  # noqa: ANN001
        pcm = self.audio[text]
        split = int(len(pcm) * HEAD) // 2 * 2
        yield pcm[:split]
        self.release.wait(STALL)
        yield pcm[split:]

    def close(self) -> None:
        self.release.set()


class CountingVoice:
    """The bundled voice, counting its renders per text."""

    def __init__(self, piper) -> None:  # noqa: ANN001
        self.piper = piper
        self.name = piper.name
        self.calls: list[str] = []

    def voices(self) -> Sequence:
        return self.piper.voices()

    def voice_for_language(self, language: str):  # noqa: ANN201
        return self.piper.voice_for_language(language)

    def synthesize(self, text: str, voice, *, opening: bool = True) -> Iterator[bytes]:  # noqa: ANN001
        self.calls.append(text)
        yield from self.piper.synthesize(text, voice, opening=opening)

    def close(self) -> None:
        pass


async def timed_reply(port: int, text: str, voice: str | None) -> tuple[float, int, int]:
    """(longest silence, audio bytes, error events) of one reply. The silence is what a
    listener hears when the audio is played as it arrives: from the request to the first
    chunk, then whenever a chunk arrives after the audio before it has played out."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        heard_until = time.monotonic()
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None).event())
        longest, audio, errors = 0.0, 0, 0
        while (event := await asyncio.wait_for(client.read_event(), 120)) is not None:
            if event.type == "audio-chunk":
                chunk = AudioChunk.from_event(event)
                now = time.monotonic()
                longest = max(longest, now - heard_until)
                heard_until = max(heard_until, now) + len(chunk.audio) / (chunk.rate * chunk.width * chunk.channels)
                audio += len(chunk.audio)
            elif event.type == "error":
                errors += 1
            elif event.type == "audio-stop":
                break
        return longest, audio, errors


def sentences_of(text: str) -> list[str]:
    from wyoming_indextts.sentences import SentenceSplitter, SplitterSettings

    splitter = SentenceSplitter(SplitterSettings())
    return [*splitter.add(text), *splitter.finish()]


async def bundled_alone(piper, texts: list[str]) -> list[tuple[float, int, int]]:  # noqa: ANN001
    """The same replies from the bundled voice alone: the waits a listener has without any fault."""
    from wyoming_indextts.cache import AudioCache
    from wyoming_indextts.service import assemble

    service = assemble({piper.name: piper}, cache=AudioCache(1, None))
    listener = await service.listen()
    try:
        return [await timed_reply(listener.bound_port, text, None) for text in texts]
    finally:
        await listener.stop()


async def phase_a(piper, texts: list[str], deadline: float) -> list[tuple[float, int, int]]:  # noqa: ANN001
    from wyoming_indextts.cache import AudioCache
    from wyoming_indextts.service import assemble
    from wyoming_indextts.synthesizer import ChainSettings

    primary = StallingPrimary(piper)
    primary.prepare([sentence for text in texts for sentence in sentences_of(text)])
    service = assemble({primary.name: primary, piper.name: piper}, PRIMARY_VOICE, cache=AudioCache(1, None), chain=ChainSettings(default_deadline=deadline, breaker_failures=1 << 30))
    listener = await service.listen()
    try:
        return [await timed_reply(listener.bound_port, text, PRIMARY_VOICE) for text in texts]
    finally:
        primary.release.set()
        await listener.stop()
        await service.synthesizer.stop(10)  # the engines stay open: the next phase uses Piper


async def phase_b(piper, text: str, clients: int) -> tuple[list[str], list[tuple[float, int, int]]]:  # noqa: ANN001
    from wyoming_indextts.service import assemble

    counting = CountingVoice(piper)
    service = assemble({counting.name: counting}, cache=None, max_concurrent=2)
    listener = await service.listen()
    try:
        replies = await asyncio.gather(*(timed_reply(listener.bound_port, text, None) for _ in range(clients)))
        return counting.calls, replies
    finally:
        await listener.stop()
        await service.synthesizer.stop(10)  # the engines stay open: the next phase uses Piper


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=12, help="replies in phase A (default: 12)")
    parser.add_argument("--deadline", type=float, default=2.0, help="the chain's deadline in seconds (default: 2, the server's)")
    parser.add_argument("--clients", type=int, default=40, help="clients asking for one text at once in phase B (default: 40)")
    add_texts_argument(parser, "announcements_en.txt and replies_en.txt")
    args = parser.parse_args(argv)

    from wyoming_indextts.engines.piper import PiperEngine

    texts = text_lines(args.texts, ("replies_en.txt", "announcements_en.txt"))[: args.requests]
    piper = PiperEngine.load()
    with LoadMonitor() as load:
        started = time.monotonic()
        baseline = [gap for gap, _, _ in asyncio.run(bundled_alone(piper, texts))]
        gaps = asyncio.run(phase_a(piper, texts, args.deadline))
        calls, replies = asyncio.run(phase_b(piper, texts[0], args.clients))
        seconds = time.monotonic() - started
    sentences = sentences_of(texts[0])
    longest = [gap for gap, _, _ in gaps]
    bound = args.deadline + 1.0
    over = sum(gap > bound for gap in longest)
    missing = sum(errors > 0 or audio == 0 for _, audio, errors in gaps + replies)
    renders = {sentence: calls.count(sentence) for sentence in sentences}
    section = f"""## stall_gap: silent gaps under a stalling engine, single flight

{timestamp()} · `{command_line()}` · {machine_description()} · {seconds:.0f} s

{load.summary()}

- Phase A, a primary that stalls for {STALL:g} s after the first {HEAD:.0%} of every sentence, deadline
  {args.deadline:g} s, {len(texts)} replies: longest silence per reply (audio played as it arrives): max **{max(longest):.2f} s**,
  median {statistics.median(longest):.2f} s; replies with a gap over deadline + 1 s ({bound:g} s): **{over}**
  (target 0). The same replies from the bundled voice alone, no fault: longest silence max
  {max(baseline):.2f} s, median {statistics.median(baseline):.2f} s (the fallback's own render time
  between sentences, which a handover adds to the deadline).
- Phase B, {args.clients} clients asking for one text ({len(sentences)} sentences) at once, no cache:
  engine renders per sentence: {", ".join(f"{count}" for count in renders.values())} (target 1 each).
- Replies with an error event or no audio, both phases: **{missing}** (target 0).
"""
    write_section(SECTION, section)
    print(section)
    return 0 if over == 0 and missing == 0 and all(count == 1 for count in renders.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
