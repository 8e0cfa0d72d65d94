"""LLM token sources: each turns chat messages into a stream of text deltas."""
