"""What in a caption line is not speech: sound tags and speaker marks, kept out of the timeline's words.

Captions describe sounds (``[Music]``, ``[Applause]``, ``(laughs)``) and mark speakers (``>>`` as YouTube writes
a change of speaker, ``- `` at the start of a line, ``JOHN:`` / ``SPEAKER 1:`` / ``SPEAKER_00:``). Left in the
words, a tag matches a keyword ("music") and takes a share of its cue when word times are interpolated, so the
real words after it start late. The segment text keeps them (it is what the caption said); the words do not.
"""

from __future__ import annotations

import re

RawWord = tuple[str, float | None, float | None]

# Sound and action tags, anywhere in a line: [Music], [ Applause ], (laughs), (crowd cheering).
_TAG = re.compile(r"\[[^\[\]]*\]|\([^()]*\)")
# A speaker mark at the start of a line: ">>", a dash before a space, an upper-case name or "Speaker 2" with a colon.
_SPEAKER = re.compile(r"\s*(?:>{2,}|[-\u2013\u2014](?=\s)|(?:[A-Z][A-Z0-9_.' -]{0,30}[A-Z0-9_]|Speaker[ _]?\d+)"
                      r"\s*:(?=\s|$))")
# Tokens that only mark something, anywhere: a mid-line ">>" (speaker change), lone dashes, music notes.
_MARK = re.compile(r"(?<!\S)(?:>{2,}|[-\u2013\u2014]+|[\u266a\u266b#]+)(?!\S)")


def _speaker_span(text: str, pos: int = 0) -> int:
    """Where the speaker marks that open ``text`` at ``pos`` end (">> JOHN: hi" -> 8)."""
    while m := _SPEAKER.match(text, pos):
        pos = m.end()
    return pos


def speech_words(words: list[RawWord]) -> list[RawWord]:
    """The words of one caption line without its tags and marks.

    A dropped word that carried a start time ends the word before it (when that one has no end yet), so a tag
    between two timed words neither lengthens the word before it nor moves the word after it.
    """
    if not words:
        return []
    texts = [w for w, _, _ in words]
    joined = " ".join(texts)
    drop = bytearray(len(joined))
    spans = [(m.start(), m.end()) for m in _TAG.finditer(joined)] + [(m.start(), m.end()) for m in
                                                                      _MARK.finditer(joined)]
    # a speaker mark opens the line, or follows a mid-line ">>" (YouTube's change of speaker)
    for at in [0] + [m.end() for m in _MARK.finditer(joined) if m.group().startswith(">")]:
        spans.append((at, _speaker_span(joined, at)))
    for a, b in spans:
        drop[a:b] = b"\x01" * (b - a)
    out: list[RawWord] = []
    pos = 0
    for text, start, end in words:
        kept = "".join(c for c, d in zip(text, drop[pos:pos + len(text)], strict=True) if not d).strip()
        pos += len(text) + 1
        if kept:
            out.append((kept, start, end))
        elif start is not None and out and out[-1][2] is None and out[-1][1] is not None:
            out[-1] = (out[-1][0], out[-1][1], max(out[-1][1], start))
    return out


def speech_tokens(text: str) -> list[RawWord]:
    """Untimed words of a segment's text, line by line (a speaker mark counts only at the start of a line)."""
    out: list[RawWord] = []
    for line in text.split("\n"):
        out += speech_words([(w, None, None) for w in line.split()])
    return out
