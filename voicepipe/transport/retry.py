"""When a request that failed before its body is tried again, and after how long.

The rules are the official OpenAI and Anthropic SDKs': 408, 409, 429 and 5xx are retried,
``x-should-retry`` overrides that, ``retry-after-ms``/``retry-after`` set the wait, and
otherwise the wait doubles from ``initial_delay`` up to ``max_delay``, with jitter.
"""

from __future__ import annotations

import email.utils
import random
import time

import httpx

from voicepipe.transport.settings import RetryPolicy

__all__ = ["backoff", "is_retryable_status", "retry_after", "retry_delay", "should_retry"]


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status says the same request may succeed later."""
    return status in (408, 409, 429) or status >= 500


def should_retry(response: httpx.Response) -> bool:
    """Whether to retry ``response``: its ``x-should-retry`` header, else its status."""
    override = str(response.headers.get("x-should-retry", "")).strip().lower()
    if override in ("true", "false"):
        return override == "true"
    return is_retryable_status(response.status_code)


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, then retry-after), or None."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return float(when.timestamp() - time.time())


def backoff(retry: RetryPolicy, retries_done: int) -> float:
    """The wait before retry number ``retries_done + 1``: capped exponential, with jitter."""
    delay = min(retry.initial_delay * 2.0**retries_done, retry.max_delay)
    return delay * (1 - 0.25 * random.random())


def retry_delay(response: httpx.Response, retry: RetryPolicy, retries_done: int) -> float | None:
    """Seconds to wait before retrying a failed ``response``, or None to give up now.

    A server that asks for a longer wait than ``retry.max_retry_after`` is not retried.
    """
    if not should_retry(response) or retries_done >= retry.max_retries:
        return None
    asked = retry_after(response.headers)
    if asked is None or asked <= 0:
        return backoff(retry, retries_done)
    return asked if asked <= retry.max_retry_after else None
