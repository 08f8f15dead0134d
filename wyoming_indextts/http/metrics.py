"""Prometheus metrics for `GET /metrics`: what the HTTP side counts itself (requests, time to
first audio) and what it reads from the shared parts at scrape time (cache, breakers, late
renders, voice preparations, pre-render progress, the render queue, who was heard). One
registry per app, so several servers in one process (tests)
never share counters."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..breaker import BreakerState
from ..prerender import Prerenderer
from ..synthesizer import Synthesizer

# A cache hit answers in milliseconds, a cloned voice on a small CPU in tens of seconds.
FIRST_AUDIO_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80)


class Metrics:
    def __init__(
        self,
        synthesizer: Synthesizer,
        preparations: Callable[[], dict[str, int]] | None = None,
        prerenderer: Prerenderer | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "wyoming_indextts_http_requests",
            "HTTP requests by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.time_to_first_audio = Histogram(
            "wyoming_indextts_http_time_to_first_audio_seconds",
            "Seconds from an HTTP speech request to its first audio",
            ["endpoint"],
            buckets=FIRST_AUDIO_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_SharedStateCollector(synthesizer, preparations, prerenderer))


class _SharedStateCollector(Collector):
    def __init__(
        self, synthesizer: Synthesizer, preparations: Callable[[], dict[str, int]] | None, prerenderer: Prerenderer | None
    ) -> None:
        self.synthesizer = synthesizer
        self.preparations = preparations
        self.prerenderer = prerenderer

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        cache = self.synthesizer.cache
        lookups = CounterMetricFamily(
            "wyoming_indextts_cache_lookups", "Cache lookups (Wyoming and HTTP) by result", labels=["result"]
        )
        if cache is not None:
            lookups.add_metric(["memory_hit"], cache.stats.memory_hits)
            lookups.add_metric(["disk_hit"], cache.stats.disk_hits)
            lookups.add_metric(["miss"], cache.stats.misses)
        yield lookups
        size = GaugeMetricFamily("wyoming_indextts_cache_bytes", "Bytes held by each cache level", labels=["level"])
        if cache is not None:
            size.add_metric(["memory"], cache.memory_bytes())
            if cache.disk is not None:
                size.add_metric(["disk"], cache.disk.total_bytes())
        yield size
        failures = CounterMetricFamily(
            "wyoming_indextts_engine_failures", "Sentences an engine failed or missed its deadline on", labels=["engine"]
        )
        state = GaugeMetricFamily(
            "wyoming_indextts_breaker_state", "1 for each engine's current breaker state", labels=["engine", "state"]
        )
        for name, breaker in self.synthesizer.breakers.items():
            failures.add_metric([name], breaker.failures_total)
            current = breaker.state
            for option in BreakerState:
                state.add_metric([name, option.value], 1.0 if option is current else 0.0)
        yield failures
        yield state
        yield GaugeMetricFamily(
            "wyoming_indextts_late_renders", "Timed-out renders finishing in the background", value=self.synthesizer.late_render_count()
        )
        yield from _ledger_metrics(self.synthesizer)
        if self.preparations is not None:
            jobs = GaugeMetricFamily("wyoming_indextts_voice_preparations", "Uploaded voices by preparation state", labels=["state"])
            for name, count in self.preparations().items():
                jobs.add_metric([name], count)
            yield jobs
        if self.prerenderer is not None:
            progress = self.prerenderer.progress
            yield GaugeMetricFamily(
                "wyoming_indextts_prerender_listed", "Sentences of the pre-render lists in the current run", value=progress.total
            )
            done = GaugeMetricFamily(
                "wyoming_indextts_prerender_sentences", "Pre-render sentences done in the current run, by result", labels=["result"]
            )
            for result, count in (("cached", progress.cached), ("rendered", progress.rendered), ("failed", progress.failed)):
                done.add_metric([result], count)
            yield done


def _ledger_metrics(synthesizer: Synthesizer) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    """The render queue, and every sentence and reply by the voice asked for, how it was
    spoken (cache, live, fallback) and the engine that spoke (totals kept across restarts)."""
    queue = synthesizer.queue
    if queue is not None:
        yield GaugeMetricFamily(
            "wyoming_indextts_render_queue_entries", "Sentences waiting in the render queue for their cloned voice", value=queue.size()
        )
        handled = CounterMetricFamily(
            "wyoming_indextts_render_queue_sentences", "Queued sentences handled since start, by result", labels=["result"]
        )
        progress = queue.progress
        for result, count in (("rendered", progress.rendered), ("failed", progress.failed), ("dropped", progress.dropped)):
            handled.add_metric([result], count)
        yield handled
    if synthesizer.heard is None:
        return
    labels = ["voice", "route", "engine"]
    sentences = CounterMetricFamily(
        "wyoming_indextts_heard_sentences", "Sentences spoken, by voice asked for, route (cache, live, fallback) and engine", labels=labels
    )
    replies = CounterMetricFamily(
        "wyoming_indextts_heard_replies", "Replies, by what spoke their first sentence (labels as for sentences)", labels=labels
    )
    for total in synthesizer.heard.totals():
        sentences.add_metric([total.voice, total.route, total.engine], total.sentences)
        replies.add_metric([total.voice, total.route, total.engine], total.replies)
    yield sentences
    yield replies
