"""Benchmark time-to-first-audio: configurations side by side, interleaved, models loaded once.

    results = await bench([BenchConfig(chunking="sentence"), BenchConfig()], ["Hi."], n=5)
    print(results[1].summary()["ttfa_ms"]["p50"] / results[0].summary()["ttfa_ms"]["p50"])

Every run goes into a :class:`NullSink` with a real-time playback clock, so underruns count;
``sink=PlaybackSink`` plays them instead, and then ``audible_ms`` says when each was first heard.
A fresh process, model loading included, is :mod:`voicepipe.apps.coldstart`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from voicepipe import timeline as tl
from voicepipe.audio.sinks.base import AudioSink
from voicepipe.audio.sinks.null import NullSink
from voicepipe.errors import ConfigError
from voicepipe.lifecycle import aclose_all
from voicepipe.llm.base import TokenSource
from voicepipe.metrics import (
    SUMMARY_FIELDS,
    RunMetrics,
    percentile,
    real_time_factor,
    stats,
    summarize,
)
from voicepipe.pipeline import Pipeline, Run
from voicepipe.providers import make_llm, make_tts
from voicepipe.text.sentences import Chunking, check_chunking
from voicepipe.transport.keys import named_key
from voicepipe.transport.settings import Timeouts
from voicepipe.transport.wording import public_url
from voicepipe.tts.base import TTSEngine

__all__ = [
    "BREAKDOWN_FIELDS",
    "BenchConfig",
    "BenchProgress",
    "BenchResult",
    "BenchRun",
    "Floor",
    "bench",
    "compare",
]

COMPARE_KEYS = ("chunking", "llm", "tts")
BREAKDOWN_FIELDS = (
    "llm_first_token_ms",
    "waiting_for_words_ms",
    "tts_first_audio_ms",
    "pipeline_overhead_ms",
)


@dataclass(frozen=True)
class BenchConfig:
    """One configuration to measure: the providers, their options and the chunking strategy.

    ``llm_key_env`` / ``tts_key_env`` name the environment variables that hold keys for the
    servers at ``llm_url`` / ``tts_url`` (the names, never the keys, are kept here).
    """

    llm: str = "local"
    tts: str = "piper"
    chunking: Chunking = "adaptive"
    llm_url: str | None = None
    tts_url: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    seed: int | None = 0
    temperature: float | None = None
    tts_speed: float | None = None
    tts_format: str | None = None
    tts_instructions: str | None = None
    llm_key_env: str | None = None
    tts_key_env: str | None = None

    def __post_init__(self) -> None:
        check_chunking(self.chunking)

    @property
    def label(self) -> str:
        return f"llm={self.llm} tts={self.tts} chunking={self.chunking}"

    def public(self) -> dict[str, Any]:
        """The settings, with URLs stripped of credentials; the system prompt, the voice
        instructions and the key variables left out."""
        out = asdict(self)
        for url in ("llm_url", "tts_url"):
            out[url] = public_url(out[url]) if out[url] else out[url]
        for private in ("system", "tts_instructions", "llm_key_env", "tts_key_env"):
            out.pop(private)
        return out

    def make_llm(
        self, timeouts: Timeouts | None = None, on_fallback: Callable[[str], None] | None = None
    ) -> TokenSource:
        """The token source this configuration names (its key read from the environment)."""
        key = None
        if self.llm_key_env is not None:
            key = named_key(self.llm_key_env, self.llm.partition(":")[0], "--llm-key-env")
        return make_llm(
            self.llm,
            url=self.llm_url,
            api_key=key,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            seed=self.seed,
            timeouts=timeouts,
            on_fallback=on_fallback,
        )

    def make_tts(
        self, timeouts: Timeouts | None = None, on_fallback: Callable[[str], None] | None = None
    ) -> TTSEngine:
        """The TTS engine this configuration names, with its options."""
        key = None
        if self.tts_key_env is not None:
            key = named_key(self.tts_key_env, self.tts.partition(":")[0], "--tts-key-env")
        return make_tts(
            self.tts,
            url=self.tts_url,
            api_key=key,
            speed=self.tts_speed,
            format=self.tts_format,
            instructions=self.tts_instructions,
            timeouts=timeouts,
            on_fallback=on_fallback,
        )


def compare(base: BenchConfig, spec: str) -> list[BenchConfig]:
    """The configurations ``KEY=A,B,...`` names: ``base`` with KEY set to each value."""
    key, _, values = spec.partition("=")
    key = key.strip()
    options = [v.strip() for v in values.split(",") if v.strip()]
    if key not in COMPARE_KEYS or not options:
        raise ConfigError(f"--compare takes KEY=A,B with KEY one of {', '.join(COMPARE_KEYS)}")
    if key == "chunking":
        return [replace(base, chunking=check_chunking(v)) for v in options]
    return [replace(base, llm=v) if key == "llm" else replace(base, tts=v) for v in options]


FLOOR_WORDS = 3  # the shortest first chunk that sounds like speech


@dataclass(frozen=True)
class Floor:
    """The least TTFA a run could have had, measured in the same run: the model's first three
    words, then the TTS on just those words with the LLM done (nothing to share the CPU with)."""

    first_token_ms: float
    three_words_ms: float  # LLM request -> the third word complete (the next character came)
    tts_three_words_ms: float  # TTS request -> first audio, on those three words alone

    @property
    def floor_ms(self) -> float:
        return self.three_words_ms + self.tts_three_words_ms

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "floor_ms": self.floor_ms}


def _words_ready_ms(run: Run, words: int) -> float | None:
    """When the answer's first ``words`` words were complete, in ms from the LLM request."""
    start = run.timeline.first(tl.LLM_REQUEST)
    if start is None:
        return None
    found = list(re.finditer(r"\S+", run.answer))
    # A word is complete once the character after it has come (or the answer ended).
    need = found[words - 1].end() + 1 if len(found) >= words else len(run.answer) + 1
    seen = 0
    for event in run.timeline.all(tl.LLM_DELTA):
        seen += int(event.data.get("chars", 0))
        if seen >= need:
            return (event.t - start.t) * 1000.0
    done = run.timeline.first(tl.LLM_DONE)
    return None if done is None else (done.t - start.t) * 1000.0


async def measure_floor(run: Run, tts: TTSEngine) -> Floor | None:
    """The run's floor (see :class:`Floor`); None when the run produced no text."""
    m = run.metrics
    ready = _words_ready_ms(run, FLOOR_WORDS)
    if m.ttft_ms is None or ready is None or not run.chunks:
        return None
    words = " ".join(run.chunks[0].split()[:FLOOR_WORDS])
    started = time.perf_counter()
    async with aclosing(tts.synthesize(words)) as audio:
        async for _ in audio:
            break
    return Floor(m.ttft_ms, ready, (time.perf_counter() - started) * 1000.0)


@dataclass(frozen=True)
class BenchRun:
    """One measured run: the prompt, the pipeline's Run (timeline, text) and when it started."""

    prompt: str
    run: Run
    started_unix: float  # wall-clock time of the LLM request (to line up with other processes)
    floor: Floor | None = None

    @property
    def metrics(self) -> RunMetrics:
        return self.run.metrics

    @property
    def rtf(self) -> float | None:
        return real_time_factor(self.run.timeline)

    def as_dict(self) -> dict[str, Any]:
        """The JSON fields of one run (the documented ones first, then additions)."""
        m = self.metrics
        out: dict[str, Any] = {k: getattr(m, k) for k in (*SUMMARY_FIELDS, "first_chunk_text")}
        out.update(rtf=self.rtf, chunks=m.chunks, prompt=self.prompt)
        out["started_unix"] = self.started_unix
        if self.floor is not None:
            out["floor"] = self.floor.as_dict()
        return out


@dataclass
class BenchResult:
    """Every measured run of one configuration."""

    config: BenchConfig
    runs: list[BenchRun] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float | None]]:
        """p50/p95/min/max of each metric, the real-time factor (``rtf``) included."""
        out = summarize(r.metrics for r in self.runs)
        out["rtf"] = stats([v for r in self.runs if (v := r.rtf) is not None])
        floors = [r for r in self.runs if r.floor is not None]
        if floors:
            out["floor_ms"] = stats([r.floor.floor_ms for r in floors if r.floor])
            out["ttfa_over_floor"] = stats(
                [
                    r.metrics.ttfa_ms / r.floor.floor_ms
                    for r in floors
                    if r.floor and r.metrics.ttfa_ms is not None and r.floor.floor_ms > 0
                ]
            )
        return out

    def floor(self) -> dict[str, float] | None:
        """Medians of the floor's parts over the runs, and TTFA p50 over floor p50."""
        floors = [r.floor for r in self.runs if r.floor is not None]
        ttfa = self.summary()["ttfa_ms"]["p50"]
        if not floors:
            return None
        out = {
            key: percentile([getattr(f, key) for f in floors], 50)
            for key in ("first_token_ms", "three_words_ms", "tts_three_words_ms", "floor_ms")
        }
        if ttfa is not None and out["floor_ms"] > 0:
            out["ttfa_over_floor"] = ttfa / out["floor_ms"]
        return out

    def breakdown(self) -> dict[str, float] | None:
        """Median of each part of TTFA over the runs (None when no run reached the sink)."""
        parts = [b for r in self.runs if (b := r.metrics.breakdown()) is not None]
        if not parts:
            return None
        return {k: percentile([p[k] for p in parts], 50) for k in BREAKDOWN_FIELDS}

    def median_run(self) -> BenchRun:
        """The run whose TTFA is closest to the median (the one worth plotting)."""
        timed = [r for r in self.runs if r.metrics.ttfa_ms is not None]
        if not timed:
            return self.runs[0]
        mid = percentile([r.metrics.ttfa_ms or 0.0 for r in timed], 50)
        return min(timed, key=lambda r: abs((r.metrics.ttfa_ms or 0.0) - mid))

    def as_dict(self, n: int, warmup: int) -> dict[str, Any]:
        """``{"config", "runs", "summary"}``, the shape ``bench --json`` writes."""
        prompts = list(dict.fromkeys(r.prompt for r in self.runs))
        config = {**self.config.public(), "prompt": prompts[0] if prompts else ""}
        if len(prompts) > 1:
            config["prompts"] = prompts
        config.update(n=n, warmup=warmup)
        return {
            "config": config,
            "runs": [r.as_dict() for r in self.runs],
            "summary": self.summary(),
        }


@dataclass(frozen=True)
class BenchProgress:
    """Reported after every run, warm-ups included."""

    done: int
    total: int
    config: BenchConfig
    warmup: bool
    run: BenchRun


def _started_unix(run: Run) -> float:
    start = run.timeline.first(tl.LLM_REQUEST)
    ago = 0.0 if start is None else time.perf_counter() - start.t
    return time.time() - ago


async def bench(
    configs: Sequence[BenchConfig],
    prompts: Sequence[str],
    *,
    n: int = 5,
    warmup: int = 1,
    timeouts: Timeouts | None = None,
    on_run: Callable[[BenchProgress], None] | None = None,
    floor: bool = True,
    sink: Callable[[], AudioSink] | None = None,
    on_fallback: Callable[[str], None] | None = None,
) -> list[BenchResult]:
    """Run every prompt ``n`` times per configuration after ``warmup`` rounds, interleaved.

    The order is A B A B ... (each configuration once per round, every prompt in turn), so
    drift on the machine falls on all configurations alike. Models load once per distinct spec.
    With ``floor``, each measured run is followed by its floor (:func:`measure_floor`).
    ``sink()`` makes each run's sink: by default a real-time :class:`NullSink`; a
    ``PlaybackSink`` (``bench --play``) also measures when the audio was heard (``audible_ms``).
    ``on_fallback`` hears each switch of a chain (``--tts a,b``): those runs measured the next
    provider, not the one named.
    """
    if n < 1 or warmup < 0:
        raise ConfigError("-n must be at least 1 and --warmup at least 0")
    prompts = [p for p in prompts if p.strip()]
    if not prompts:
        raise ConfigError("no prompt given: pass a prompt or --prompts FILE with one per line")
    if not configs:
        raise ConfigError("no configuration to bench")
    llms: dict[tuple[Any, ...], TokenSource] = {}
    ttss: dict[tuple[Any, ...], TTSEngine] = {}
    pipes: list[Pipeline] = []
    for c in configs:
        lkey = (c.llm, c.llm_url, c.max_tokens, c.seed, c.temperature, c.llm_key_env)
        if lkey not in llms:
            llms[lkey] = c.make_llm(timeouts, on_fallback)
        tkey = (c.tts, c.tts_url, c.tts_speed, c.tts_format, c.tts_instructions, c.tts_key_env)
        if tkey not in ttss:
            ttss[tkey] = c.make_tts(timeouts, on_fallback)
        pipes.append(Pipeline(llms[lkey], ttss[tkey], chunking=c.chunking, system=c.system))
    results = [BenchResult(c) for c in configs]
    schedule = [(True, prompts[i % len(prompts)]) for i in range(warmup)]
    schedule += [(False, p) for _ in range(n) for p in prompts]
    total, done = len(schedule) * len(configs), 0
    try:
        for pipe in pipes:
            await pipe.prepare()
        for is_warmup, prompt in schedule:
            for result, pipe in zip(results, pipes, strict=True):  # interleaved: A B A B ...
                # Each run a new question: the embedded LLM's prompt cache holds the system
                # prompt, not the prompt the configuration before just asked.
                warm_up = getattr(pipe.llm, "warm_up", None)
                if warm_up is not None:
                    await warm_up()
                out = sink() if sink is not None else NullSink(realtime=True)
                run = await pipe.speak(prompt, out)
                lowest = None
                if floor and not is_warmup:
                    lowest = await measure_floor(run, pipe.tts)
                measured = BenchRun(prompt, run, _started_unix(run), lowest)
                done += 1
                if not is_warmup:
                    result.runs.append(measured)
                if on_run is not None:
                    on_run(BenchProgress(done, total, result.config, is_warmup, measured))
    finally:
        await aclose_all((*llms.values(), *ttss.values()))
    return results
