"""Streaming HTTP for the network providers, one concern a module.

settings (Timeouts, RetryPolicy) · keys (which key goes where, redaction) · wording (error
bodies and hints) · retry (when and how long) · stream (open with retries, read under
timeouts) · sse (server-sent events) · provider (the HTTPProvider base) · chat (the HTTP
chat base).
"""
