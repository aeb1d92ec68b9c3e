"""Whisper / faster-whisper / WhisperX JSON: ``segments`` with ``start``/``end``/``text`` and optional ``words``.

WhisperX leaves some words (numerals, symbols) without ``start``/``end``; they are interpolated between their
timed neighbours. A file may also be a bare list of segments.
"""

from __future__ import annotations

import json
from typing import Any

from faceexpr_cli.transcripts.base import TranscriptError, register_reader
from faceexpr_cli.transcripts.timeline import Timeline, TimelineBuilder


def _sniff(text: str) -> bool:
    head = text.lstrip()[:4000]
    return head.startswith(("{", "[")) and '"segments"' in head or ('"start"' in head and '"text"' in head
                                                                     and '"transcription_timestamp"' not in head)


def load_json(text: str, path: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TranscriptError(path, exc.lineno, f"not valid JSON ({exc.msg}, column {exc.colno})") from exc


def _num(value: Any, path: str, key: str, required: bool = True) -> float | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TranscriptError(path, f"key {key}", f"expected a number of seconds, found {value!r}")
    return float(value)


@register_reader("whisper", (".json",), _sniff, "Whisper / faster-whisper / WhisperX JSON")
def read_whisper(text: str, path: str) -> list[Timeline]:
    data = load_json(text, path)
    if isinstance(data, dict):
        if "segments" not in data:
            raise TranscriptError(path, "key 'segments'", "missing", "Whisper JSON has a 'segments' list")
        segments = data["segments"]
        language = data.get("language")
    else:
        segments, language = data, None
    if not isinstance(segments, list):
        raise TranscriptError(path, "key 'segments'", f"expected a list, found {type(segments).__name__}")
    b = TimelineBuilder(path, "whisper")
    for i, seg in enumerate(segments):
        where = f"segments[{i}]"
        if not isinstance(seg, dict):
            raise TranscriptError(path, f"key {where}", "expected an object with start, end and text")
        for k in ("start", "end"):
            if k not in seg:
                raise TranscriptError(path, f"key {where}.{k}", "missing")
        start = _num(seg["start"], path, f"{where}.start")
        end = _num(seg["end"], path, f"{where}.end")
        words = None
        if seg.get("words"):
            words = []
            for j, w in enumerate(seg["words"]):
                wk = f"{where}.words[{j}]"
                if not isinstance(w, dict) or not isinstance(w.get("word", w.get("text")), str):
                    raise TranscriptError(path, f"key {wk}.word", "missing or not text")
                words.append((w.get("word", w.get("text")), _num(w.get("start"), path, f"{wk}.start", False),
                              _num(w.get("end"), path, f"{wk}.end", False)))
        b.add(start, end, str(seg.get("text", "")), words)
    fields = {"language": language} if language else {}
    return [b.finish(fields=fields)]
