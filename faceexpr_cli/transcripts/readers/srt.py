"""SubRip (.srt): numbered cues with ``hh:mm:ss,mmm --> hh:mm:ss,mmm`` and text; words are interpolated per cue."""

from __future__ import annotations

import html
import re

from faceexpr_cli.transcripts.base import TranscriptError, parse_clock, register_reader, strip_bom
from faceexpr_cli.transcripts.timeline import Timeline, TimelineBuilder

_TIMING = re.compile(r"^\s*(\S+)\s*-->\s*(\S+)")
_TAGS = re.compile(r"</?[a-zA-Z][^>]*>|\{\\[^}]*\}")
_SNIFF = re.compile(r"^\s*\d+\s*\n\s*\d+:\d{2}:\d{2}[,.]\d{1,3}\s*-->", re.M)


def _sniff(text: str) -> bool:
    return bool(_SNIFF.search(strip_bom(text)[:2000]))


@register_reader("srt", (".srt",), _sniff, "SubRip subtitles")
def read_srt(text: str, path: str) -> list[Timeline]:
    lines = strip_bom(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    b = TimelineBuilder(path, "srt")
    block: list[tuple[int, str]] = []
    for no, line in enumerate([*lines, ""], 1):
        if line.strip():
            block.append((no, line))
            continue
        if block:
            _cue(block, b, path)
            block = []
    return [b.finish()]


def _cue(block: list[tuple[int, str]], b: TimelineBuilder, path: str) -> None:
    timing_at = next((i for i, (_, ln) in enumerate(block[:2]) if "-->" in ln), None)
    if timing_at is None:
        no, line = block[0]
        raise TranscriptError(path, no, f"cue without a timing line: {line.strip()[:60]!r}",
                              "SRT cues are: number, 00:00:01,000 --> 00:00:02,500, text")
    if timing_at == 1 and not block[0][1].strip().isdigit():
        no, line = block[0]
        raise TranscriptError(path, no, f"expected a cue number, found {line.strip()[:60]!r}")
    no, line = block[timing_at]
    m = _TIMING.match(line)
    start = parse_clock(m.group(1)) if m else None
    end = parse_clock(m.group(2)) if m else None
    if start is None or end is None:
        raise TranscriptError(path, no, f"bad cue timing {line.strip()[:60]!r}", "expected hh:mm:ss,mmm --> hh:mm:ss,mmm")
    body = "\n".join(html.unescape(_TAGS.sub("", ln)) for _, ln in block[timing_at + 1:])  # lines: speaker marks
    b.add(start, end, body)
