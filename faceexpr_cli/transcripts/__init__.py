"""Transcripts of any supported format as one timeline of timed words and segments.

``load_transcript(path)`` picks a reader by suffix (and by content for ``.json``); ``find_transcript(video)``
finds the file beside a video. A new format is one module in ``transcripts/readers/`` calling
``register_reader``.
"""

from faceexpr_cli.transcripts.base import READERS, TranscriptError, register_reader
from faceexpr_cli.transcripts.loading import NoTranscriptError, find_transcript, load_transcript, looked_for
from faceexpr_cli.transcripts.timeline import Segment, Timeline, TimelineBuilder, Word, normalise_word

__all__ = [
    "READERS",
    "NoTranscriptError",
    "Segment",
    "Timeline",
    "TimelineBuilder",
    "TranscriptError",
    "Word",
    "find_transcript",
    "load_transcript",
    "looked_for",
    "normalise_word",
    "register_reader",
]
