"""Streaming HTTP for the network providers: requests, retries, timeouts, SSE, keys, errors."""
