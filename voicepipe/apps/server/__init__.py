"""`voicepipe serve`: the pipeline behind HTTP (see ``app`` for the routes)."""
