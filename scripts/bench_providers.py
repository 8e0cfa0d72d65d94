"""The client's own overhead against loopback provider servers with known timing.

An OpenAI-compatible chat server streams tokens at a fixed pace and an OpenAI-compatible
speech server answers after a fixed delay; both run in this process (uvicorn threads), so
their perf_counter() timestamps compare directly with the pipeline's timeline. Reported,
p50/p95 over the runs:

- chunk -> TTS request: from the server sending the token that completed the first chunk
  to the speech server receiving the TTS request (parse, segment, request);
- TTS byte -> sink: from the speech server's first audio byte to that audio reaching the sink.

Usage: .venv/bin/python scripts/bench_providers.py [-n 20]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import serve
from tests.servers.llm import Behaviour as LLMBehaviour
from tests.servers.llm import FakeLLM
from tests.servers.tts import Behaviour as TTSBehaviour
from tests.servers.tts import TTSServer
from voicepipe import timeline as tl
from voicepipe.audio.sinks.null import NullSink
from voicepipe.llm.openai import OpenAIChat
from voicepipe.metrics import percentile
from voicepipe.pipeline import Pipeline
from voicepipe.tts.openai import OpenAITTS

TEXT = (
    "The first sentence is short and clear. The second one follows it at the same pace. "
    "A third sentence closes the answer."
)


async def main(runs: int) -> None:
    llm_app = FakeLLM(LLMBehaviour(text=TEXT, token_interval=0.02))
    tts_app = TTSServer(TTSBehaviour(first_byte_delay=0.05, chunk_size=4800))
    to_request: list[float] = []
    to_sink: list[float] = []
    ttfa: list[float] = []
    with serve(llm_app) as llm_url, serve(tts_app) as tts_url:
        async with httpx.AsyncClient() as llm_client, httpx.AsyncClient() as tts_client:
            llm = OpenAIChat("bench", base_url=f"{llm_url}/v1", client=llm_client)
            tts = OpenAITTS(base_url=f"{tts_url}/v1", client=tts_client)
            pipe = Pipeline(llm, tts, chunking="sentence")
            for i in range(runs + 1):  # the first run warms connections and is not counted
                llm_app.write_times.clear()
                tts_app.requests.clear()
                run = await pipe.speak("Say something.", NullSink(realtime=False))
                if i == 0:
                    continue
                chunk = run.timeline.first(tl.TEXT_CHUNK)
                sink = run.timeline.first(tl.SINK_AUDIO)
                assert chunk is not None and sink is not None
                completing = max(t for t in llm_app.write_times if t <= chunk.t)
                first_request = tts_app.requests[0]
                assert first_request.first_byte_at is not None
                to_request.append((first_request.received_at - completing) * 1000)
                to_sink.append((sink.t - first_request.first_byte_at) * 1000)
                ttfa.append(run.metrics.ttfa_ms or 0.0)
    for name, values in (
        ("chunk -> TTS request", to_request),
        ("TTS first byte -> sink", to_sink),
        ("TTFA (20 ms/token, 50 ms TTS delay)", ttfa),
    ):
        p50, p95 = percentile(values, 50), percentile(values, 95)
        print(f"{name:<38} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   (n={len(values)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="measured runs (default 20)")
    anyio.run(main, parser.parse_args().n)
