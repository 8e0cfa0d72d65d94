"""What the HTTP chat APIs share: model options, usage, and the loop that reads an answer.

A vendor's class sends its request in ``_frames`` and reads each frame in ``_read``;
:meth:`HTTPChat.stream` does the rest: resetting usage, tracking whether text was delivered
(a later failure is then StreamInterrupted), draining after the end marker.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Sequence
from contextlib import aclosing
from typing import Any, ClassVar, Generic, TypeVar, Unpack

from voicepipe.llm.base import Message
from voicepipe.transport.provider import HTTPOptions, HTTPProvider
from voicepipe.transport.stream import StreamProgress, drain

__all__ = ["ChatOptions", "HTTPChat"]

Frame = TypeVar("Frame")


class ChatOptions(HTTPOptions, total=False):
    """Options every HTTP chat provider takes, besides the connection's.

    ``temperature``: sampling temperature (None: the server's default). ``extra_body``: fields
    merged into the request body last, for server-specific options.
    """

    temperature: float | None
    extra_body: dict[str, Any] | None


class HTTPChat(HTTPProvider, Generic[Frame]):
    """A chat API that streams its answer as frames of type ``Frame`` over HTTP.

    After a stream, ``last_usage`` and ``finish_reason`` hold what the server reported (None
    if it did not). ``end_marker`` names what a complete answer ends with; None: the end of
    the body is a normal end too.
    """

    shown = ("model", "base_url")
    end_marker: ClassVar[str | None] = None

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        max_tokens: int | None,
        api_key: str | None = None,
        temperature: float | None = None,
        extra_body: dict[str, Any] | None = None,
        **options: Unpack[HTTPOptions],
    ) -> None:
        super().__init__(base_url, api_key=api_key, **options)
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.extra_body = dict(extra_body or {})
        self.last_usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None

    def _request_body(self, messages: Iterable[Message], **fields: object) -> dict[str, Any]:
        """The JSON body: model, messages, ``stream: true`` and each of ``fields`` that is not
        None, with ``extra_body`` merged over all."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "stream": True,
        }
        body.update((name, value) for name, value in fields.items() if value is not None)
        body.update(self.extra_body)
        return body

    def _frames(self, messages: Sequence[Message]) -> AsyncGenerator[Frame, None]:
        """Send the request for ``messages``; yield the answer's frames as they arrive."""
        raise NotImplementedError

    def _read(self, frame: Frame, progress: StreamProgress) -> str | None:
        """The text in ``frame``, if any; record usage and the finish reason, set
        ``progress.ended`` at the end marker, raise ``progress.error`` on a bad frame."""
        raise NotImplementedError

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        """Yield the answer's text deltas as they arrive.

        :raises ConfigError: the base URL is not an http(s) URL.
        :raises ProviderError: the request failed before any text arrived (HTTP status, no
            connection, first-byte timeout, malformed stream); ``retryable`` says if trying
            again may help.
        :raises StreamInterrupted: the stream failed after text was yielded (stall, dropped
            connection, malformed frame, an error sent mid-stream); what came is kept.
        """
        self.last_usage = None
        self.finish_reason = None
        progress = StreamProgress(self.name, self._secrets())
        frames = self._frames(messages)
        async with aclosing(frames):
            async for frame in frames:
                text = self._read(frame, progress)
                if text:
                    progress.started = True
                    yield text
                if progress.ended:
                    await drain(frames)
                    return
        if self.end_marker is not None and self.finish_reason is None:
            raise progress.error(
                f"{self.name} ended the stream before {self.end_marker}; "
                "the answer may be cut short, try again"
            )
