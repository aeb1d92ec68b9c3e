"""Word tables (.csv / .tsv) with a header naming ``start``, ``end`` and ``word`` (or ``text``/``token``).

An optional ``segment`` column groups words into segments; without it a new segment starts after a pause of
more than ``PAUSE`` seconds or after a word ending a sentence.
"""

from __future__ import annotations

import csv
import io

from faceexpr_cli.transcripts.base import TranscriptError, register_reader, strip_bom
from faceexpr_cli.transcripts.timeline import Timeline, TimelineBuilder

PAUSE = 0.6
WORD_COLUMNS = ("word", "text", "token")


def _sniff(text: str) -> bool:
    head = strip_bom(text).split("\n", 1)[0].lower().replace("\t", ",")
    cols = [c.strip() for c in head.split(",")]
    return "start" in cols and "end" in cols and any(c in cols for c in WORD_COLUMNS)


@register_reader("table", (".csv", ".tsv"), _sniff, "CSV/TSV of start,end,word")
def read_table(text: str, path: str) -> list[Timeline]:
    text = strip_bom(text)
    first = text.split("\n", 1)[0]
    delim = "\t" if "\t" in first else ","
    rows = csv.reader(io.StringIO(text), delimiter=delim)
    header = [h.strip().lower() for h in next(rows, [])]
    word_col = next((c for c in WORD_COLUMNS if c in header), None)
    if "start" not in header or "end" not in header or word_col is None:
        raise TranscriptError(path, 1, f"header {first.strip()[:60]!r} lacks start, end and word columns",
                              "the first line must name the columns, e.g. start,end,word")
    i_s, i_e, i_w = header.index("start"), header.index("end"), header.index(word_col)
    i_g = header.index("segment") if "segment" in header else None
    b = TimelineBuilder(path, "table")
    current: list[tuple[str, float, float]] = []
    group = None

    def flush() -> None:
        if current:
            b.add(current[0][1], current[-1][2], " ".join(w for w, _, _ in current), list(current))
            current.clear()

    for no, row in enumerate(rows, 2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) <= max(i_s, i_e, i_w):
            raise TranscriptError(path, no, f"expected {len(header)} columns, found {len(row)}")
        try:
            start, end = float(row[i_s]), float(row[i_e])
        except ValueError as exc:
            raise TranscriptError(path, no, f"start/end are not numbers: {row[i_s]!r}, {row[i_e]!r}") from exc
        word = row[i_w].strip()
        new_group = row[i_g] if i_g is not None and len(row) > i_g else None
        if current and ((i_g is not None and new_group != group) or
                        (i_g is None and (start - current[-1][2] > PAUSE or current[-1][0][-1:] in ".?!"))):
            flush()
        group = new_group
        current.append((word, start, end))
    flush()
    return [b.finish()]
