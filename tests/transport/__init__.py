"""Tests for the streaming HTTP transport, against a real loopback server."""
