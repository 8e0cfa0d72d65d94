"""The applications built on the library's public API: chat, bench, batch, traces, plot, server."""
