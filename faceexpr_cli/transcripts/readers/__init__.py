"""Transcript readers: one module per format, each registering itself in ``transcripts.base.READERS``."""
