"""One timeline for every transcript format: words (with times) grouped into segments (cues, lines, sentences).

Readers feed segments into a ``TimelineBuilder``; words that came without times (SRT cues, WhisperX numerals, the
seed's segment strings) get times interpolated inside their segment by character length, and are marked
``timed=False`` so users can tell measured from estimated times. ``finish`` sorts unordered cues and clips
negative or inverted spans, recording what it fixed in ``warnings``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from faceexpr_cli.transcripts.speech import RawWord, speech_tokens, speech_words

_STRIP = re.compile(r"^[^\w']+|[^\w']+$")


def normalise_word(text: str) -> str:
    """Lower case without surrounding punctuation (inner apostrophes and hyphens stay): "Smile!" -> "smile"."""
    return _STRIP.sub("", text.lower().replace("\u2019", "'"))


@dataclass
class Word:
    text: str
    start: float
    end: float
    segment: int = 0
    timed: bool = True

    @property
    def norm(self) -> str:
        return normalise_word(self.text)


@dataclass
class Segment:
    text: str
    start: float
    end: float
    first_word: int = 0
    n_words: int = 0


@dataclass
class Timeline:
    """Words and segments of one video's transcript (times in seconds from the video's start)."""

    words: list[Word]
    segments: list[Segment]
    source: str = ""  # the transcript file
    format: str = ""  # the reader that made it
    video: str | None = None  # the video it names, when the format says (the seed's video_path)
    duration: float | None = None  # the video duration it states (the seed's duration_ms)
    fields: dict[str, Any] = field(default_factory=dict)  # subject fields and other per-video metadata
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)

    @property
    def end(self) -> float:
        return max((s.end for s in self.segments), default=0.0)

    def segment_words(self, index: int) -> list[Word]:
        seg = self.segments[index]
        return self.words[seg.first_word:seg.first_word + seg.n_words]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "format": self.format, "video": self.video, "duration": self.duration,
            "fields": self.fields, "warnings": self.warnings,
            "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in self.segments],
            "words": [{"start": w.start, "end": w.end, "text": w.text, "segment": w.segment, "timed": w.timed}
                      for w in self.words],
        }



class TimelineBuilder:
    """Collects segments (each with optional timed words) and produces a consistent ``Timeline``."""

    def __init__(self, source: str = "", fmt: str = ""):
        self.source = source
        self.format = fmt
        self._segments: list[tuple[float, float, str, list[RawWord]]] = []
        self.warnings: list[str] = []

    def add(self, start: float, end: float, text: str, words: list[RawWord] | None = None) -> None:
        """A segment; ``words`` (text, start or None, end or None) default to the text split on spaces.

        Lines of ``text`` may be separated by newlines (a speaker mark counts at the start of a line). Sound
        tags and speaker marks stay in the segment's text but never become words (``transcripts.speech``).
        """
        if words is None:
            words = speech_tokens(text)
        else:
            words = speech_words([(" ".join(t.split()), s, e) for t, s, e in words if t.strip()])
        text = " ".join(text.split())
        if not text and not words:
            return
        if not text:
            text = " ".join(w[0] for w in words)
        self._segments.append((float(start), float(end), text, words))

    def finish(self, **meta: Any) -> Timeline:
        segs = self._segments
        order = sorted(range(len(segs)), key=lambda i: (segs[i][0], i))
        if order != list(range(len(segs))):
            self.warnings.append(f"{sum(1 for a, b in enumerate(order) if a != b)} cues were out of order; sorted")
        words: list[Word] = []
        segments: list[Segment] = []
        fixed = 0
        for i in order:
            start, end, text, raw = segs[i]
            if start < 0:
                start, fixed = 0.0, fixed + 1
            if end < start:
                end, fixed = start, fixed + 1
            timed = _interpolate(raw, start, end)
            seg_index = len(segments)
            segments.append(Segment(text, start, end, len(words), len(timed)))
            words.extend(Word(t, s, e, seg_index, ok) for t, s, e, ok in timed)
        if fixed:
            self.warnings.append(f"{fixed} cues had negative or inverted times; clipped")
        return Timeline(words, segments, source=self.source, format=self.format,
                        warnings=list(self.warnings), **meta)


def _interpolate(raw: list[RawWord], seg_start: float, seg_end: float) -> list[tuple[str, float, float, bool]]:
    """Give every word a start/end: known times kept, runs of unknown ones spread by character length."""
    n = len(raw)
    starts: list[float | None] = [s for _, s, _ in raw]
    ends: list[float | None] = [e for _, _, e in raw]
    out: list[tuple[str, float, float, bool]] = [("", 0.0, 0.0, False)] * n
    i = 0
    while i < n:
        if starts[i] is not None:
            s = float(starts[i])
            e = ends[i] if ends[i] is not None else _next_start(starts, i + 1, seg_end)
            out[i] = (raw[i][0], s, max(s, float(e)), True)
            i += 1
            continue
        j = i
        while j < n and starts[j] is None:
            j += 1
        lo = out[i - 1][2] if i > 0 else seg_start
        hi = float(starts[j]) if j < n else seg_end
        hi = max(hi, lo)
        lengths = [max(1, len(raw[k][0])) for k in range(i, j)]
        total = float(sum(lengths))
        t = lo
        for k, length in zip(range(i, j), lengths, strict=True):
            step = (hi - lo) * length / total
            out[k] = (raw[k][0], t, t + step, False)
            t += step
        i = j
    return out


def _next_start(starts: list[float | None], i: int, default: float) -> float:
    for s in starts[i:]:
        if s is not None:
            return float(s)
    return default
