"""The `voicepipe` command: a thin layer over the library (see README for the same in Python)."""

from __future__ import annotations

import argparse
import codecs
import json
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, TextIO

import anyio

from voicepipe.audio.sinks import AudioSink, NullSink, TeeSink, file_sink, supported_formats
from voicepipe.errors import AudioError, ConfigError, VoicepipeError
from voicepipe.metrics import SUMMARY_FIELDS, RunMetrics, summarize
from voicepipe.pipeline import CHUNKINGS, Pipeline, TextDelta, single_error
from voicepipe.providers import LLM_PROVIDERS, TTS_PROVIDERS, make_llm, make_tts

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
FALLBACK_WAV = "voicepipe-answer.wav"


def _provider_help(table: dict[str, Any]) -> str:
    return "; ".join(f"{info.usage}: {info.summary}" for info in table.values())


def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pipeline")
    g.add_argument(
        "--llm",
        default="local",
        metavar="SPEC",
        help=f"token source (default: local). {_provider_help(LLM_PROVIDERS)}",
    )
    g.add_argument("--llm-url", metavar="URL", help="base URL for the LLM provider's API")
    g.add_argument(
        "--tts",
        default="piper",
        metavar="SPEC",
        help=f"TTS engine (default: piper). {_provider_help(TTS_PROVIDERS)}",
    )
    g.add_argument("--tts-url", metavar="URL", help="base URL for the TTS provider's API")
    g.add_argument("--system", metavar="TEXT", help="system prompt (the assistant's persona)")
    g.add_argument(
        "--chunking",
        choices=CHUNKINGS,
        default="adaptive",
        help="when text goes to the TTS: adaptive (first clause early, then sentences; "
        "default), sentence (each sentence), naive (whole answer first: the baseline)",
    )
    g.add_argument(
        "--max-tokens", type=int, metavar="N", help="cap the answer's length (local default 256)"
    )
    g.add_argument("--seed", type=int, metavar="N", help="sampling seed (local LLM)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voicepipe",
        description="Make an LLM talk: speech starts while the model is still writing. "
        "Works offline by default (embedded llama.cpp + Piper).",
        epilog="Examples:\n"
        '  voicepipe say "Why is the sky blue?"\n'
        '  voicepipe synth "Tell me a story." -o story.mp3\n'
        '  voicepipe bench "Name three rivers." -n 5 --compare chunking=naive,sentence,adaptive\n'
        '  echo "Dr. Smith arrived. He sat." | voicepipe split',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    say = sub.add_parser("say", help="speak the answer to PROMPT on the speakers")
    say.add_argument("prompt", help="what to ask")
    say.add_argument("-o", "--output", metavar="FILE", help="also write the audio to FILE")
    say.add_argument("--device", metavar="NAME|INDEX", help="output device (voicepipe devices)")
    say.add_argument("-q", "--quiet", action="store_true", help="do not print the answer text")
    say.add_argument("-v", "--verbose", action="store_true", help="print timings after the run")
    _add_pipeline_options(say)

    synth = sub.add_parser("synth", help="write the answer to PROMPT to an audio file")
    synth.add_argument("prompt", help="what to ask")
    synth.add_argument(
        "-o", "--output", required=True, metavar="FILE", help=f"audio file ({supported_formats()})"
    )
    synth.add_argument("--bitrate", metavar="RATE", help="bitrate for lossy formats, e.g. 64k")
    synth.add_argument("-v", "--verbose", action="store_true", help="print timings after the run")
    _add_pipeline_options(synth)

    bench = sub.add_parser(
        "bench",
        help="measure time-to-first-audio (null sink, models loaded once)",
        description="Run PROMPT N times after K warm-ups and report time to first text, first "
        "chunk, first TTS audio and first audio at the sink (TTFA), all from the moment "
        "the LLM request is sent. With --compare, configurations run interleaved "
        "(A B A B ...) so machine noise falls on all of them alike.",
    )
    bench.add_argument("prompt", help="what to ask")
    bench.add_argument("-n", type=int, default=5, metavar="N", help="measured runs (default 5)")
    bench.add_argument("--warmup", type=int, default=1, metavar="K", help="warm-up runs (1)")
    bench.add_argument("--json", metavar="FILE", help="write every run and the summary as JSON")
    bench.add_argument(
        "--compare",
        metavar="KEY=A,B",
        help="compare values of one setting side by side: chunking, llm or tts "
        "(e.g. chunking=naive,sentence,adaptive)",
    )
    _add_pipeline_options(bench)
    bench.set_defaults(seed=0)

    split = sub.add_parser(
        "split",
        help="show how text on stdin is cut into chunks",
        description="Feed stdin to the sentence buffer the way an LLM streams (word-sized "
        "pieces, or N characters at a time) and print each chunk it releases on a line.",
    )
    split.add_argument(
        "--mode",
        choices=("sentences", "speech"),
        default="sentences",
        help="sentences: plain sentence boundaries; speech: what would be sent to the TTS",
    )
    split.add_argument(
        "--chunking", choices=CHUNKINGS, default="adaptive", help="policy for --mode speech"
    )
    split.add_argument("--json", action="store_true", help='print {"text": ...} per chunk')
    split.add_argument("--chunk-chars", type=int, metavar="N", help="feed N characters at a time")

    sub.add_parser("devices", help="list audio output devices")
    return parser


def _err(message: str) -> None:
    print(f"voicepipe: {message}", file=sys.stderr)


def _pipeline(args: argparse.Namespace, **overrides: Any) -> Pipeline:
    spec = {"llm": args.llm, "tts": args.tts, "chunking": args.chunking, **overrides}
    llm = make_llm(spec["llm"], url=args.llm_url, max_tokens=args.max_tokens, seed=args.seed)
    tts = make_tts(spec["tts"], url=args.tts_url)
    return Pipeline(llm, tts, chunking=spec["chunking"], system=args.system)


def _print_metrics(m: RunMetrics, out: TextIO) -> None:
    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f} ms"

    print(
        f"TTFA {fmt(m.ttfa_ms)} (first token {fmt(m.ttft_ms)}, first chunk "
        f"{fmt(m.first_chunk_ms)}, TTS first audio {fmt(m.tts_first_audio_ms)}); "
        f"{m.audio_ms / 1000:.1f} s of audio in {m.chunks} chunks; underrun {m.underrun_ms:.0f} ms",
        file=out,
    )
    parts = m.breakdown()
    if parts:
        print("  where TTFA went: " + ", ".join(f"{k} {v:.0f}" for k, v in parts.items()), file=out)


async def _speak(args: argparse.Namespace, sink: AudioSink, show_text: bool) -> int:
    async with _pipeline(args) as pipe, pipe.run(args.prompt, sink) as run:
        async for event in run:
            if show_text and isinstance(event, TextDelta):
                sys.stdout.write(event.text)
                sys.stdout.flush()
    if show_text:
        print()
    if args.verbose:
        _print_metrics(run.metrics, sys.stderr)
    return 0


async def cmd_say(args: argparse.Namespace) -> int:
    from voicepipe.audio.playback import PlaybackSink, resolve_device

    sinks: list[AudioSink] = []
    try:
        resolve_device(args.device)
        sinks.append(PlaybackSink(args.device))
    except AudioError as exc:
        if args.device is not None:
            raise
        reason = str(exc).split(";")[0]
        if args.output:
            _err(f"{reason}: writing the answer to {args.output} only")
        else:
            target = str(await anyio.Path(FALLBACK_WAV).absolute())
            _err(f"{reason}: writing the answer to {target} instead (choose with -o FILE)")
            sinks.append(file_sink(target))
    if args.output:
        sinks.append(file_sink(args.output))
    sink = sinks[0] if len(sinks) == 1 else TeeSink(*sinks)
    code = await _speak(args, sink, show_text=not args.quiet)
    for s in sinks:
        if hasattr(s, "path"):
            print(f"wrote {s.path}", file=sys.stderr)
    return code


async def cmd_synth(args: argparse.Namespace) -> int:
    sink = file_sink(args.output, bitrate=args.bitrate)
    async with _pipeline(args) as pipe:
        run = await pipe.speak(args.prompt, sink)
    m = run.metrics
    print(
        f"wrote {args.output}: {m.audio_ms / 1000:.1f} s of audio, {m.chunks} chunks, "
        f"TTFA {m.ttfa_ms or 0:.0f} ms, total {m.total_ms or 0:.0f} ms",
        file=sys.stderr,
    )
    if args.verbose:
        _print_metrics(m, sys.stderr)
    return 0


def _bench_configs(args: argparse.Namespace) -> list[dict[str, Any]]:
    base = {"llm": args.llm, "tts": args.tts, "chunking": args.chunking}
    if not args.compare:
        return [base]
    key, _, values = args.compare.partition("=")
    key = key.strip()
    if key not in base or not values:
        raise ConfigError(f"--compare takes KEY=A,B with KEY one of {', '.join(base)}")
    options = [v.strip() for v in values.split(",") if v.strip()]
    if key == "chunking":
        for v in options:
            if v not in CHUNKINGS:
                raise ConfigError(f"unknown chunking {v!r}: use one of {', '.join(CHUNKINGS)}")
    return [{**base, key: v} for v in options]


def _table(rows: dict[str, dict[str, float | None]]) -> Iterator[str]:
    yield f"  {'metric':<20}{'p50':>9}{'p95':>9}{'min':>9}{'max':>9}"
    for name, s in rows.items():
        cells = "".join("        -" if v is None else f"{v:9.0f}" for v in s.values())
        yield f"  {name:<20}{cells}"


async def cmd_bench(args: argparse.Namespace) -> int:
    if args.n < 1 or args.warmup < 0:
        raise ConfigError("-n must be at least 1 and --warmup at least 0")
    configs = _bench_configs(args)
    results: list[list[RunMetrics]] = [[] for _ in configs]
    # Models are loaded once per distinct spec and shared by the configurations using them.
    llms: dict[str, Any] = {}
    ttss: dict[str, Any] = {}
    pipes: list[Pipeline] = []
    for c in configs:
        if c["llm"] not in llms:
            llms[c["llm"]] = make_llm(
                c["llm"], url=args.llm_url, max_tokens=args.max_tokens, seed=args.seed
            )
        if c["tts"] not in ttss:
            ttss[c["tts"]] = make_tts(c["tts"], url=args.tts_url)
        pipes.append(
            Pipeline(llms[c["llm"]], ttss[c["tts"]], chunking=c["chunking"], system=args.system)
        )
    try:
        print(f"loading models for {len(configs)} configuration(s)...", file=sys.stderr)
        for pipe in pipes:
            await pipe.prepare()
        total = (args.warmup + args.n) * len(configs)
        done = 0
        for i in range(args.warmup + args.n):
            for k, pipe in enumerate(pipes):  # interleaved: A B A B ...
                run = await pipe.speak(args.prompt, NullSink(realtime=True))
                done += 1
                label = "warm-up" if i < args.warmup else f"run {i - args.warmup + 1}/{args.n}"
                ttfa = run.metrics.ttfa_ms
                print(
                    f"\r[{done}/{total}] {label} {_label(configs[k])}: TTFA "
                    f"{'-' if ttfa is None else f'{ttfa:.0f} ms'}   ",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
                if i >= args.warmup:
                    results[k].append(run.metrics)
    finally:
        with anyio.CancelScope(shield=True):
            for part in (*llms.values(), *ttss.values()):
                close = getattr(part, "aclose", None)
                if close is not None:
                    await close()
    print(file=sys.stderr)
    report: list[dict[str, Any]] = []
    for config, runs in zip(configs, results, strict=True):
        summary = summarize(runs)
        report.append(
            {
                "config": {**config, "prompt": args.prompt, "n": args.n, "warmup": args.warmup},
                "runs": [
                    {k: getattr(r, k) for k in (*SUMMARY_FIELDS, "first_chunk_text")} for r in runs
                ],
                "summary": summary,
            }
        )
        print(f"{_label(config)}  (n={len(runs)}, ms)")
        for line in _table(summary):
            print(line)
    if len(report) > 1:
        base = report[0]["summary"]["ttfa_ms"]["p50"]
        for entry in report[1:]:
            p50 = entry["summary"]["ttfa_ms"]["p50"]
            if base and p50 is not None:
                print(
                    f"TTFA p50 ratio {_label(entry['config'])} / {_label(report[0]['config'])}: "
                    f"{p50 / base:.2f}"
                )
    if args.json:
        payload: dict[str, Any] = report[0] if len(report) == 1 else {"results": report}
        await anyio.Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _label(config: dict[str, Any]) -> str:
    return f"llm={config['llm']} tts={config['tts']} chunking={config['chunking']}"


_WORDS = re.compile(r"\s*\S+|\s+$")


def _pieces(stream: BinaryIO, chunk_chars: int | None) -> Iterator[str]:
    """Stdin as an LLM would stream it: word-sized pieces, or fixed-size character runs."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = 0
    pending = ""
    while True:
        data = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not data:
            break
        try:
            pending += decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"stdin is not valid UTF-8 (byte {offset + exc.start}); convert it first, "
                "e.g. with iconv"
            ) from exc
        offset += len(data)
        if chunk_chars:
            while len(pending) >= chunk_chars:
                yield pending[:chunk_chars]
                pending = pending[chunk_chars:]
        else:
            # Keep the last (possibly incomplete) word for the next read.
            cut = len(pending.rstrip()) if pending[-1:].isspace() else pending.rfind(" ")
            head, pending = (pending[:cut], pending[cut:]) if cut > 0 else ("", pending)
            yield from (m.group() for m in _WORDS.finditer(head))
    if chunk_chars:
        if pending:
            yield pending
    else:
        yield from (m.group() for m in _WORDS.finditer(pending))


def cmd_split(args: argparse.Namespace) -> int:
    from voicepipe.text.sentences import SentenceBuffer
    from voicepipe.text.speech import SpeechNormalizer

    if args.chunk_chars is not None and args.chunk_chars < 1:
        raise ConfigError("--chunk-chars must be at least 1")
    speech = args.mode == "speech"
    buffer = SentenceBuffer(args.chunking if speech else "sentence")
    normalizer = SpeechNormalizer() if speech else None

    def emit(chunks: list[str]) -> None:
        for chunk in chunks:
            print(json.dumps({"text": chunk}, ensure_ascii=False) if args.json else chunk)
        sys.stdout.flush()

    for piece in _pieces(sys.stdin.buffer, args.chunk_chars):
        emit(buffer.feed(normalizer.feed(piece) if normalizer else piece))
    if normalizer:
        emit(buffer.feed(normalizer.flush()))
    emit(buffer.flush())
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from voicepipe.audio.playback import output_devices

    devices = output_devices()
    if not devices:
        print("no audio output devices (write audio to a file with -o FILE)")
    for d in devices:
        mark = "*" if d["default"] else " "
        print(
            f"{mark} {d['index']:>3}  {d['name']}  "
            f"({d['channels']} ch, {d['default_samplerate']:.0f} Hz)"
        )
    return 0


ASYNC_COMMANDS = {"say": cmd_say, "synth": cmd_synth, "bench": cmd_bench}
SYNC_COMMANDS = {"split": cmd_split, "devices": cmd_devices}


def _run(args: argparse.Namespace) -> int:
    if args.command in SYNC_COMMANDS:
        return SYNC_COMMANDS[args.command](args)
    if not args.prompt.strip():
        raise ConfigError("the prompt is empty: say what the assistant should answer")
    try:
        return anyio.run(ASYNC_COMMANDS[args.command], args)
    except BaseExceptionGroup as group:
        raise single_error(group) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        if args.debug:
            raise
        _err(f"error: {exc}")
        return EXIT_USAGE
    except VoicepipeError as exc:
        if args.debug:
            raise
        _err(f"error: {exc}")
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
