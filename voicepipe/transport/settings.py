"""How long a streaming request may wait at each phase, and how often it is tried again."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_RETRY", "DEFAULT_TIMEOUTS", "RetryPolicy", "Timeouts"]


@dataclass(frozen=True)
class Timeouts:
    """How long to wait, in seconds, at each phase of a streaming request."""

    connect: float = 10.0
    first_byte: float = 60.0  # request sent -> response headers + first body bytes
    idle: float = 30.0  # max gap between body chunks


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a request that failed before any body byte arrived."""

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # a retry-after larger than this means: don't retry


# Shared defaults, for signatures (a call in a default argument trips linters).
DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_RETRY = RetryPolicy()
