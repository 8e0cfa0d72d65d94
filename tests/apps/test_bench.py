"""bench: figures from known timelines; end to end against loopback servers with known delays."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from tests import ROOT_DIR
from tests.audio.conftest import PacedDevice
from tests.servers import serve
from tests.servers.llm import Behaviour as LLMBehaviour
from tests.servers.llm import FakeLLM
from tests.servers.tts import SECONDS_PER_CHARACTER, TTSServer
from tests.servers.tts import Behaviour as TTSBehaviour
from voicepipe import timeline as tl
from voicepipe.apps.bench import BenchConfig, BenchResult, BenchRun, bench, compare
from voicepipe.errors import ConfigError
from voicepipe.metrics import real_time_factor
from voicepipe.pipeline import Run
from voicepipe.timeline import Event, Timeline

ROOT = ROOT_DIR
TEXT = "Hello there. The sky is blue, mostly because of Rayleigh scattering."
TOKENS = 11  # the fake LLM cuts TEXT before each word
FIRST_TOKEN = 0.150  # seconds from request to first token
TOKEN_GAP = 0.010
TTS_FIRST_BYTE = 0.080
SLACK_MS = 35  # loopback HTTP, two server threads and a shared 2-core machine


def timeline(events: list[tuple[str, float, dict[str, object]]]) -> Timeline:
    t = Timeline()
    for name, at, data in events:
        t.add(Event(name, at, dict(data)))
    return t


def test_real_time_factor_is_synthesis_time_over_audio_time() -> None:
    t = timeline(
        [
            (tl.LLM_REQUEST, 0.0, {}),
            (tl.TTS_REQUEST, 1.0, {"index": 0}),
            (tl.TTS_DONE, 1.2, {"index": 0, "seconds": 1.0}),
            (tl.TTS_REQUEST, 1.2, {"index": 1}),
            (tl.TTS_DONE, 1.5, {"index": 1, "seconds": 2.0}),
        ]
    )
    assert real_time_factor(t) == pytest.approx(0.5 / 3.0)
    assert real_time_factor(timeline([(tl.LLM_REQUEST, 0.0, {})])) is None


def known_run(ttfa: float, overhead: float = 0.002) -> BenchRun:
    """A run whose TTFA is ``ttfa`` seconds: first token at 0.1, chunk at 0.2."""
    run = Run(
        timeline=timeline(
            [
                (tl.LLM_REQUEST, 0.0, {}),
                (tl.LLM_DELTA, 0.1, {"chars": 5}),
                (tl.TEXT_CHUNK, 0.2, {"index": 0, "text": "Hello there."}),
                (tl.TTS_REQUEST, 0.2, {"index": 0}),
                (tl.TTS_AUDIO, ttfa - overhead, {"index": 0, "seconds": 0.5}),
                (tl.SINK_AUDIO, ttfa, {"index": 0, "seconds": 0.5}),
                (tl.TTS_DONE, ttfa + 0.05, {"index": 0, "seconds": 0.5}),
                (tl.RUN_END, 1.0, {}),
            ]
        )
    )
    return BenchRun("Hi.", run, 0.0)


def test_result_summary_breakdown_and_median_run() -> None:
    runs = [known_run(0.3), known_run(0.5), known_run(0.4)]
    result = BenchResult(BenchConfig(), runs)
    summary = result.summary()
    assert summary["ttfa_ms"] == pytest.approx({"p50": 400, "p95": 490, "min": 300, "max": 500})
    assert summary["rtf"]["p50"] == pytest.approx((0.4 + 0.05 - 0.2) / 0.5)
    parts = result.breakdown()
    assert parts == pytest.approx(
        {
            "llm_first_token_ms": 100,
            "waiting_for_words_ms": 100,
            "tts_first_audio_ms": 198,
            "pipeline_overhead_ms": 2,
        }
    )
    assert result.median_run() is runs[2]
    row = runs[0].as_dict()
    assert row["ttfa_ms"] == pytest.approx(300) and row["prompt"] == "Hi."


def test_compare_builds_one_config_per_value_and_rejects_the_rest() -> None:
    base = BenchConfig(llm="text", tts="espeak")
    assert [c.chunking for c in compare(base, "chunking=naive, sentence")] == ["naive", "sentence"]
    assert [c.tts for c in compare(base, "tts=espeak,piper")] == ["espeak", "piper"]
    for bad in ("colour=red", "chunking=", "chunking=fast"):
        with pytest.raises(ConfigError):
            compare(base, bad)


def test_public_config_has_no_credentials_or_system_prompt() -> None:
    config = BenchConfig(llm_url="https://user:s3cret@host:8443/v1?key=abc", system="Be terse.")
    public = config.public()
    assert public["llm_url"] == "https://host:8443/v1"
    assert "system" not in public and "s3cret" not in json.dumps(public)
    assert BenchConfig().public()["llm_url"] is None


@dataclass
class Servers:
    llm: FakeLLM
    tts: TTSServer
    llm_url: str
    tts_url: str


@pytest.fixture
def servers() -> Iterator[Servers]:
    """A fake LLM and a fake TTS on loopback, with known delays."""
    llm = FakeLLM(LLMBehaviour(text=TEXT, first_token_delay=FIRST_TOKEN, token_interval=TOKEN_GAP))
    tts = TTSServer(TTSBehaviour(first_byte_delay=TTS_FIRST_BYTE))
    with serve(llm) as llm_url, serve(tts) as tts_url:
        yield Servers(llm, tts, f"{llm_url}/v1", f"{tts_url}/v1")


def config(s: Servers, chunking: str) -> BenchConfig:
    return BenchConfig(
        llm="openai:test-model",
        tts="openai:tts-1",
        chunking=chunking,  # type: ignore[arg-type]
        llm_url=s.llm_url,
        tts_url=s.tts_url,
    )


@pytest.mark.anyio
async def test_bench_measures_the_delays_the_servers_were_given(servers: Servers) -> None:
    with anyio.fail_after(30):
        (result,) = await bench([config(servers, "naive")], ["Why?"], n=3, warmup=1)
    assert len(result.runs) == 3 and len(servers.llm.requests) == 4
    # Naive: the whole answer is one chunk, released when the stream ends.
    words_ms = 1000 * (TOKENS - 1) * TOKEN_GAP
    for run in result.runs:
        m = run.metrics
        parts = m.breakdown()
        assert parts is not None and m.ttft_ms is not None and m.first_chunk_ms is not None
        # No run is faster than the delays the servers were given.
        assert m.ttft_ms >= 1000 * FIRST_TOKEN - 1
        assert parts["waiting_for_words_ms"] >= words_ms - 1
        assert parts["tts_first_audio_ms"] >= 1000 * TTS_FIRST_BYTE - 1
        assert parts["pipeline_overhead_ms"] >= 0
        assert m.ttfa_ms == pytest.approx(sum(parts.values()))
        assert m.audio_ms == pytest.approx(1000 * len(TEXT) * SECONDS_PER_CHARACTER, abs=1)
        assert m.chunks == 1 and run.rtf is not None and run.rtf < 1
    # And the median run adds little to them. Each provider keeps one httpx client for all its
    # requests (transport's ClientOwner) and the warm-up run opened its connections, so the
    # first token pays for no connect either. The median, because one run in a few on a busy
    # 2-core machine meets a scheduling hiccup of tens of ms that no server was told to add.
    ttft_ms = result.summary()["ttft_ms"]["p50"]
    parts = result.breakdown()
    assert ttft_ms is not None and parts is not None
    assert ttft_ms <= 1000 * FIRST_TOKEN + SLACK_MS
    assert parts["waiting_for_words_ms"] <= words_ms + SLACK_MS
    assert parts["tts_first_audio_ms"] <= 1000 * TTS_FIRST_BYTE + SLACK_MS
    assert parts["pipeline_overhead_ms"] < 10


@pytest.mark.anyio
async def test_configurations_run_interleaved_and_early_chunking_wins(servers: Servers) -> None:
    configs = [config(servers, "naive"), config(servers, "sentence")]
    with anyio.fail_after(30):
        naive, sentence = await bench(configs, ["Why?"], n=2, warmup=1, floor=False)
    # What each run asked the TTS first says which configuration ran: A B A B A B.
    inputs = [r.json["input"] for r in servers.tts.requests]
    starts = [i for i in inputs if i in (TEXT, "Hello there.")]
    assert starts == [TEXT, "Hello there."] * 3
    naive_p50 = naive.summary()["ttfa_ms"]["p50"]
    sentence_p50 = sentence.summary()["ttfa_ms"]["p50"]
    assert naive_p50 is not None and sentence_p50 is not None
    # The sentence is out once the next word shows it ended; naive waits for the last token.
    assert sentence_p50 < naive_p50 - 1000 * (TOKENS - 5) * TOKEN_GAP
    assert {r.metrics.first_chunk_text for r in sentence.runs} == {"Hello there."}


@pytest.mark.anyio
async def test_each_run_measures_its_floor_in_the_same_session(servers: Servers) -> None:
    """The floor: first token, the first three words, the TTS on those words alone."""
    with anyio.fail_after(30):
        (result,) = await bench([config(servers, "sentence")], ["Why?"], n=2, warmup=1)
    # Each measured run is followed by one TTS request for its first three words.
    inputs = [r.json["input"] for r in servers.tts.requests]
    assert inputs.count("Hello there.") == 3 + 2  # three runs' first chunks, two floors
    for run in result.runs:
        floor = run.floor
        assert floor is not None and run.metrics.ttft_ms == floor.first_token_ms
        # "Hello there. The" is whole once the fourth token (" sky") came.
        assert floor.three_words_ms >= 1000 * (FIRST_TOKEN + 3 * TOKEN_GAP) - 1
        assert floor.three_words_ms <= 1000 * (FIRST_TOKEN + 3 * TOKEN_GAP) + SLACK_MS
        assert 1000 * TTS_FIRST_BYTE - 1 <= floor.tts_three_words_ms
        assert floor.tts_three_words_ms <= 1000 * TTS_FIRST_BYTE + SLACK_MS
        assert run.as_dict()["floor"]["floor_ms"] == pytest.approx(floor.floor_ms)
    parts = result.floor()
    ttfa = result.summary()["ttfa_ms"]["p50"]
    assert parts is not None and ttfa is not None
    assert parts["ttfa_over_floor"] == pytest.approx(ttfa / parts["floor_ms"])
    assert result.summary()["floor_ms"]["p50"] == pytest.approx(parts["floor_ms"])


@pytest.mark.anyio
async def test_bench_rejects_bad_counts_and_empty_prompts() -> None:
    with anyio.fail_after(5):
        with pytest.raises(ConfigError):
            await bench([BenchConfig(llm="text")], ["Hi."], n=0)
        with pytest.raises(ConfigError):
            await bench([BenchConfig(llm="text")], ["  ", ""], n=1)


def voicepipe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicepipe", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_bench_command_end_to_end(servers: Servers, tmp_path: Path) -> None:
    db = tmp_path / "traces.sqlite"
    fake_key = "sk-test-DO-NOT-STORE-0123456789"
    env = {**os.environ, "VOICEPIPE_TRACE_DB": str(db), "OPENAI_API_KEY": fake_key}
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Why is the sky blue?\n\nName a river.\n")
    out = {name: tmp_path / name for name in ("bench.json", "bench.csv", "bench.png")}
    result = voicepipe(
        "bench",
        "--prompts",
        str(prompts),
        "-n",
        "1",
        "--warmup",
        "0",
        "--llm",
        "openai:test-model",
        "--llm-url",
        servers.llm_url,
        "--tts",
        "openai:tts-1",
        "--tts-url",
        servers.tts_url,
        "--compare",
        "chunking=naive,adaptive",
        "--json",
        str(out["bench.json"]),
        "--csv",
        str(out["bench.csv"]),
        "--plot",
        str(out["bench.png"]),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    for needle in ("ttfa_ms", "adaptive / naive", "waiting for words", "pipeline's own share"):
        assert needle in result.stdout
    report = json.loads(out["bench.json"].read_text())
    assert [r["config"]["chunking"] for r in report["results"]] == ["naive", "adaptive"]
    assert report["results"][0]["config"]["prompts"] == ["Why is the sky blue?", "Name a river."]
    for entry in report["results"]:
        assert [r["prompt"] for r in entry["runs"]] == ["Why is the sky blue?", "Name a river."]
        assert entry["summary"]["rtf"]["p50"] is not None
    rows = list(csv.DictReader(out["bench.csv"].open()))
    assert [(r["chunking"], r["run"]) for r in rows] == [
        ("naive", "1"),
        ("naive", "2"),
        ("adaptive", "1"),
        ("adaptive", "2"),
    ]
    width, height = png_size(out["bench.png"])
    assert 800 <= width <= 2000 and 300 <= height <= 1500  # two panels: one per configuration

    # Every measured run is in the trace store, with the config but no key and no text.
    listing = voicepipe("traces", env=env)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count("bench") >= 4
    assert fake_key.encode() not in db.read_bytes()
    assert b"Rayleigh" not in db.read_bytes() and b"sky blue" not in db.read_bytes()
    with sqlite3.connect(db) as conn:
        (last,) = conn.execute("SELECT max(id) FROM runs").fetchone()
    shown = voicepipe("traces", "show", str(last), "--plot", str(tmp_path / "t.png"), env=env)
    assert shown.returncode == 0, shown.stderr
    assert "where TTFA went" in shown.stdout and "text.chunk" in shown.stdout
    assert png_size(tmp_path / "t.png")[0] >= 800


def test_cold_start_counts_process_start_and_model_loading(
    servers: Servers, tmp_path: Path
) -> None:
    env = {**os.environ, "VOICEPIPE_TRACE_DB": str(tmp_path / "t.sqlite")}
    out = tmp_path / "cold.json"
    result = voicepipe(
        "bench",
        "Why?",
        "-n",
        "1",
        "--warmup",
        "0",
        "--cold",
        "1",
        "--no-trace",
        "--llm",
        "openai:test-model",
        "--llm-url",
        servers.llm_url,
        "--tts",
        "openai:tts-1",
        "--tts-url",
        servers.tts_url,
        "--chunking",
        "naive",
        "--json",
        str(out),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    cold = json.loads(out.read_text())["cold"]["runs"]
    assert len(cold) == 1
    (run,) = cold
    # A fresh interpreter takes well over 50 ms to import voicepipe before it can ask.
    assert run["load_ms"] > 50
    assert run["process_to_first_audio_ms"] == pytest.approx(run["load_ms"] + run["ttfa_ms"])
    assert run["ttfa_ms"] >= 1000 * (FIRST_TOKEN + TTS_FIRST_BYTE) - 1
    assert "cold start" in result.stdout
    assert not (tmp_path / "t.sqlite").exists()  # --no-trace


def test_bench_play_reports_when_each_run_was_heard(
    servers: Servers, paced_device: PacedDevice, tmp_path: Path
) -> None:
    """--play runs through real PortAudio (a device paced in real time) and adds audible_ms."""
    env = {**paced_device.env, "VOICEPIPE_TRACE_DB": str(tmp_path / "t.sqlite")}
    providers = ["--llm", "openai:test-model", "--llm-url", servers.llm_url]
    providers += ["--tts", "openai:tts-1", "--tts-url", servers.tts_url, "--chunking", "sentence"]
    out = {name: tmp_path / name for name in ("play.json", "play.csv", "null.json")}
    played = voicepipe(
        "bench", "Why?", "-n", "2", "--warmup", "0", "--play", *providers,
        "--json", str(out["play.json"]), "--csv", str(out["play.csv"]), env=env,
    )  # fmt: skip
    assert played.returncode == 0, played.stderr
    assert "audible_ms (left the speaker)" in played.stdout and "output_latency_ms" in played.stdout
    report = json.loads(out["play.json"].read_text())
    assert report["config"]["sink"] == "playback"
    for run in report["runs"]:
        assert run["ttfa_ms"] < run["audible_ms"] < run["ttfa_ms"] + 1000
        assert run["output_latency_ms"] == pytest.approx(run["audible_ms"] - run["ttfa_ms"])
    assert report["summary"]["audible_ms"]["p50"] is not None
    rows = list(csv.DictReader(out["play.csv"].open()))
    assert [float(r["audible_ms"]) for r in rows] == [r["audible_ms"] for r in report["runs"]]
    # The runs were recorded with the sink they played on, and their audible time.
    with sqlite3.connect(tmp_path / "t.sqlite") as conn:
        stored = conn.execute("SELECT config, audible_ms FROM runs ORDER BY id").fetchall()
    assert [json.loads(c)["sink"] for c, _ in stored] == ["playback", "playback"]
    assert [a for _, a in stored] == pytest.approx([r["audible_ms"] for r in report["runs"]])
    # Without --play nothing is heard: the rows are not shown, the figures are null.
    null = voicepipe(
        "bench", "Why?", "-n", "1", "--warmup", "0", "--no-trace", *providers,
        "--json", str(out["null.json"]), env=env,
    )  # fmt: skip
    assert null.returncode == 0, null.stderr
    assert "audible_ms" not in null.stdout and "ttfa_ms" in null.stdout
    report = json.loads(out["null.json"].read_text())
    assert report["config"]["sink"] == "null" and report["runs"][0]["audible_ms"] is None


def test_bench_device_without_play_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "VOICEPIPE_TRACE_DB": str(tmp_path / "t.sqlite")}
    result = voicepipe("bench", "Hi.", "--llm", "text", "--device", "3", env=env)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "--device chooses the speakers for --play" in line


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (scripts/test)")
def test_bench_says_when_a_chain_switched_provider(tmp_path: Path) -> None:
    # The first TTS is a closed port: every run is espeak's, and the report must not let that
    # pass for the first provider's figures.
    env = {**os.environ, "VOICEPIPE_TRACE_DB": str(tmp_path / "t.sqlite")}
    args = ["bench", "Hi there.", "--llm", "text", "-n", "1", "--warmup", "0", "--no-trace"]
    args += ["--tts", "openai:tts-1,espeak", "--tts-url", "http://127.0.0.1:9/v1"]
    result = voicepipe(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert "TTS openai failed on chunk 1" in result.stderr
    assert "espeak speaks from there" in result.stderr
