"""TTS engines: each turns a chunk of text into a stream of audio chunks."""
