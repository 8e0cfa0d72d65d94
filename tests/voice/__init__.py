"""Tests for the voice input: VAD, microphone, listener, STT."""
