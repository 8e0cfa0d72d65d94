"""What a TTS fallback chain costs while nothing fails: TTFA of an engine alone and in a chain.

    .venv/bin/python scripts/bench_fallback.py                 # 10 runs of each, interleaved
    .venv/bin/python scripts/bench_fallback.py -n 20 --realtime 2
    .venv/bin/python scripts/bench_fallback.py --primary piper     # piper vs piper,espeak

A chain passes a chunk on once its engine has finished it (a voice cannot resume another's
half-spoken sentence), so an engine that streams within a chunk starts later in a chain.
Here the engine is the loopback OpenAI-compatible speech server (tests/servers/tts.py)
streaming 24 kHz PCM in 50 ms pieces at ``--realtime`` times real time, as cloud voices do;
the LLM is the ``text`` source, chunking adaptive, the sink a null sink. "alone" is
``openai:tts-1``, "chain" is ``openai:tts-1,espeak``; they alternate, so noise falls on both.
``--primary SPEC`` compares another engine (e.g. ``piper``, which hands over a sentence at a
time, so a chain should cost it nothing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import serve  # noqa: E402
from tests.servers.tts import Behaviour, TTSServer  # noqa: E402
from voicepipe.audio.sinks.null import NullSink  # noqa: E402
from voicepipe.llm.text import TextSource  # noqa: E402
from voicepipe.pipeline import Pipeline  # noqa: E402
from voicepipe.providers import make_tts  # noqa: E402

ANSWER = (
    "The sky looks blue because air scatters short blue wavelengths of sunlight far more "
    "than red ones. At sunset the light crosses more air, so the blues are scattered away."
)


async def ttfa(spec: str, url: str | None) -> float:
    pipe = Pipeline(TextSource(tokens_per_second=0), make_tts(spec, url=url))
    async with pipe:
        run = await pipe.speak(ANSWER, NullSink(realtime=False))
    assert run.metrics.ttfa_ms is not None
    return run.metrics.ttfa_ms


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-n", type=int, default=10, help="runs of each (default 10)")
    p.add_argument("--realtime", type=float, default=2.0, help="server speed (default 2x)")
    p.add_argument("--primary", help="compare this --tts spec instead of the loopback server")
    args = p.parse_args()
    piece = 2400  # bytes: 50 ms of 24 kHz PCM
    app = TTSServer(Behaviour(chunk_size=piece, chunk_delay=0.05 / args.realtime))
    primary = args.primary or "openai:tts-1"
    specs = {"alone": primary, "chain": f"{primary},espeak"}
    times: dict[str, list[float]] = {name: [] for name in specs}
    with serve(app) as url:
        for _ in range(args.n):
            for name, spec in specs.items():
                times[name].append(anyio.run(ttfa, spec, None if args.primary else f"{url}/v1"))
    alone, chain = (statistics.median(times[k]) for k in specs)
    where = f"server at {args.realtime:g}x real time" if not args.primary else primary
    print(f"TTFA p50 over {args.n} runs each ({where}):")
    for name, spec in specs.items():
        print(f"  {name:6} {spec:22} {statistics.median(times[name]):6.0f} ms")
    print(f"  chain / alone {chain / alone:.2f} ({chain - alone:+.0f} ms)")


if __name__ == "__main__":
    main()
