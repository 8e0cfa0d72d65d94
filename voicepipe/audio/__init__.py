"""Audio: the chunk type, the bounded queue and the sinks."""
