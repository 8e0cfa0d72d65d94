"""Sinks: where audio goes. Null (benchmarks), files, tee, playback, a stream for HTTP."""
