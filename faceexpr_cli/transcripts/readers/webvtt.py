"""WebVTT, including YouTube's word-timed auto-captions.

YouTube auto-captions roll: every cue shows the previous line again (plain text) above the new line, whose words
carry inline times (``word<00:00:01.234><c> next</c>``), and short 10 ms cues repeat the text alone. Only the timed
lines are new speech, so in a word-timed file the untimed lines are dropped when they repeat a recent line and kept
(e.g. ``[Music]``) otherwise. Ordinary (human) captions become one segment per cue, with roll-up repeats of the
previous cue's lines removed.
"""

from __future__ import annotations

import html
import re

from faceexpr_cli.transcripts.base import TranscriptError, parse_clock, register_reader, strip_bom
from faceexpr_cli.transcripts.timeline import Timeline, TimelineBuilder, normalise_word

_INLINE_TS = re.compile(r"<((?:\d+:)?\d{2}:\d{2}\.\d{3})>")
_TAG = re.compile(r"</?[^>]*>")
_TIMING = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)(.*)$")


def _sniff(text: str) -> bool:
    return strip_bom(text).lstrip().startswith("WEBVTT")


def _clean(text: str) -> str:
    return " ".join(html.unescape(_TAG.sub("", text)).replace("\u00a0", " ").split())


def _blocks(lines: list[str]):
    """(first line number, lines) for each blank-line separated block.

    YouTube writes a line holding one space as the first payload line of a cue; such a line separates blocks
    only when no cue text follows it.
    """
    block: list[str] = []
    start = 0
    for no, line in enumerate(lines, 1):
        nxt = lines[no] if no < len(lines) else ""
        after = lines[no + 1] if no + 1 < len(lines) else ""
        in_cue = any("-->" in ln for ln in block)
        payload_space = line and in_cue and nxt.strip() and "-->" not in nxt and "-->" not in after
        if line.strip() or payload_space:
            if not block:
                start = no
            block.append(line)
        elif block:
            yield start, block
            block = []
    if block:
        yield start, block


def _cues(text: str, path: str, warnings: list[str]):
    """(timing line number, start, end, payload lines) per cue. A block with no timing line in its first two
    lines is skipped with a warning, as browsers skip it; a timing line that does not parse fails the file."""
    lines = strip_bom(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or not lines[0].startswith("WEBVTT"):
        raise TranscriptError(path, 1, "missing the WEBVTT header", "a WebVTT file starts with the line WEBVTT")
    for first_no, block in _blocks(lines):
        if first_no == 1 or block[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        timing_at = next((i for i, ln in enumerate(block[:2]) if "-->" in ln), None)
        if timing_at is None:
            warnings.append(f"line {first_no}: skipped a block without a timing line: {block[0].strip()[:60]!r} "
                            "(cues look like: 00:00:01.000 --> 00:00:02.500)")
            continue
        no = first_no + timing_at
        m = _TIMING.match(block[timing_at])
        start = parse_clock(m.group(1)) if m else None
        end = parse_clock(m.group(2)) if m else None
        if start is None or end is None:
            raise TranscriptError(path, no, f"bad cue timing {block[timing_at].strip()[:60]!r}",
                                  "expected hh:mm:ss.mmm --> hh:mm:ss.mmm")
        yield no, start, end, block[timing_at + 1:]


def _timed_words(line: str, cue_start: float, path: str, no: int) -> list[tuple[str, float, float | None]]:
    pieces = _INLINE_TS.split(line)  # text, time, text, time, text ...
    words: list[tuple[str, float, float | None]] = []
    t = cue_start
    for k, piece in enumerate(pieces):
        if k % 2:
            parsed = parse_clock(piece)
            if parsed is None:
                raise TranscriptError(path, no, f"bad inline time <{piece}>")
            t = parsed
            continue
        for w in _clean(piece).split():
            words.append((w, t, None))
    return words


@register_reader("webvtt", (".vtt",), _sniff, "WebVTT, incl. YouTube word-timed auto-captions")
def read_webvtt(text: str, path: str) -> list[Timeline]:
    b = TimelineBuilder(path, "webvtt")
    cues = list(_cues(text, path, b.warnings))
    word_timed = any(_INLINE_TS.search(ln) for _, _, _, payload in cues for ln in payload)
    if word_timed:
        _read_rolling(cues, b, path)
    else:
        _read_plain(cues, b)
    return [b.finish()]


def _read_rolling(cues, b: TimelineBuilder, path: str) -> None:
    recent: list[str] = []  # normalised text of the last emitted lines
    pending: list[tuple[float, float, list]] = []  # segments whose last word's end is not known yet
    for no, start, end, payload in cues:
        for line in payload:
            if _INLINE_TS.search(line):
                words = _timed_words(line, start, path, no)
                pending.append((start, end, words))
            else:
                clean = _clean(line)
                key = " ".join(normalise_word(w) for w in clean.split())
                if not key or key in recent or end - start < 0.05:
                    continue
                pending.append((start, end, [(w, None, None) for w in clean.split()]))
                words = pending[-1][2]
            recent = (recent + [" ".join(normalise_word(w[0]) for w in words)])[-3:]
    for k, (start, end, words) in enumerate(pending):
        nxt = pending[k + 1][0] if k + 1 < len(pending) else end
        timed = [w for w in words if w[1] is not None]
        seg_end = min(end, max(nxt, timed[-1][1] if timed else start))
        raw = []
        for i, (w, s, _) in enumerate(words):
            e = words[i + 1][1] if i + 1 < len(words) and words[i + 1][1] is not None else None
            raw.append((w, s, e if s is not None else None))
        if raw and raw[-1][1] is not None:
            raw[-1] = (raw[-1][0], raw[-1][1], max(raw[-1][1], seg_end))
        b.add(start, max(seg_end, start), " ".join(w for w, _, _ in words), raw)


def _read_plain(cues, b: TimelineBuilder) -> None:
    prev_lines: list[str] = []
    for _, start, end, payload in cues:
        lines = [_clean(ln) for ln in payload]
        lines = [ln for ln in lines if ln]
        while lines and prev_lines and lines[0] in prev_lines[-2:]:
            lines = lines[1:]  # roll-up caption repeating the previous cue's line
        if lines:
            b.add(start, end, "\n".join(lines))  # one line each: a speaker mark opens a line
            prev_lines = lines
