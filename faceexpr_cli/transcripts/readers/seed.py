"""The seed's transcript list: a JSON list of videos, each ``{"video_path", "transcription_timestamp":
"[0.000] text [3.555] text ...", "duration_ms", subject fields...}``.

Each ``[t]`` starts a segment that ends where the next begins (the last ends at ``duration_ms``, or after an
estimate from its length). Every other key of an entry (subject id, age, gender, skin type, ...) is kept as the
video's fields and travels into each clip's metadata.
"""

from __future__ import annotations

import re

from faceexpr_cli.transcripts.base import TranscriptError, register_reader
from faceexpr_cli.transcripts.readers.whisper import load_json
from faceexpr_cli.transcripts.timeline import Timeline, TimelineBuilder

TEXT_KEY = "transcription_timestamp"
_MARK = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*\]")
SECONDS_PER_CHAR = 0.07  # speech rate used to end a final segment when the duration is unknown


def _sniff(text: str) -> bool:
    return f'"{TEXT_KEY}"' in text[:20000]


def parse_timestamped(text: str, path: str, where: str) -> list[tuple[float, str]]:
    """``"[0.000] a [3.5] b"`` -> [(0.0, "a"), (3.5, "b")]."""
    parts = _MARK.split(text)
    if parts[0].strip():
        raise TranscriptError(path, f"key {where}", f"text before the first [time] mark: {parts[0].strip()[:40]!r}",
                              'expected "[0.000] text [3.555] text ..."')
    return [(float(parts[k]), parts[k + 1].strip()) for k in range(1, len(parts), 2)]


@register_reader("seed", (".json",), _sniff, "the seed's JSON list with '[0.000] text' transcripts")
def read_seed(text: str, path: str) -> list[Timeline]:
    data = load_json(text, path)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise TranscriptError(path, None, "expected a JSON list of videos")
    out = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise TranscriptError(path, f"key [{i}]", "expected an object")
        if TEXT_KEY not in entry or not isinstance(entry[TEXT_KEY], str):
            raise TranscriptError(path, f"key [{i}].{TEXT_KEY}", "missing or not text")
        duration = entry.get("duration_ms")
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)):
            raise TranscriptError(path, f"key [{i}].duration_ms", f"expected milliseconds, found {duration!r}")
        duration_s = duration / 1000.0 if duration is not None else None
        marks = parse_timestamped(entry[TEXT_KEY], path, f"[{i}].{TEXT_KEY}")
        b = TimelineBuilder(path, "seed")
        for k, (start, seg_text) in enumerate(marks):
            if k + 1 < len(marks):
                end = marks[k + 1][0]
            elif duration_s is not None and duration_s > start:
                end = min(duration_s, start + max(1.0, len(seg_text) * SECONDS_PER_CHAR * 2))
            else:
                end = start + max(0.5, len(seg_text) * SECONDS_PER_CHAR)
            b.add(start, max(start, end), seg_text)
        fields = {k: v for k, v in entry.items() if k not in (TEXT_KEY, "video_path", "duration_ms")}
        out.append(b.finish(video=entry.get("video_path"), duration=duration_s, fields=fields))
    return out
