"""Reading a transcript file with the right reader, and finding a video's transcript next to it."""

from __future__ import annotations

from pathlib import Path

from faceexpr_cli.errors import DataError, MissingFileError
from faceexpr_cli.transcripts.base import READERS, TranscriptError, TranscriptReader
from faceexpr_cli.transcripts.timeline import Timeline

# Same-stem suffixes tried next to a video, in order; yt-dlp's language-tagged names (talk.en.vtt) come after.
SIDE_SUFFIXES = (".vtt", ".srt", ".json", ".tsv", ".csv")
PREFERRED_LANGUAGES = ("en", "en-orig", "en-US", "en-GB")


def choose_reader(path: Path, text: str, fmt: str | None = None) -> TranscriptReader:
    if fmt:
        return READERS.get(fmt)
    readers = [READERS.get(n) for n in READERS.names()]
    claiming = [r for r in readers if path.suffix.lower() in r.suffixes]
    if len(claiming) == 1:
        return claiming[0]
    for r in claiming or readers:
        if r.sniff(text):
            return r
    known = ", ".join(sorted({s for r in readers for s in r.suffixes}))
    raise TranscriptError(path, None, "not a transcript format fx knows",
                          f"use one of {known}, or name the format with --transcript-format")


def load_transcript(path: str | Path, fmt: str | None = None) -> list[Timeline]:
    """Every timeline the file holds (one per video; the seed's JSON list may hold many)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "transcript")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TranscriptError(path, None, f"is not UTF-8 text (byte {exc.start})", "re-save it as UTF-8") from exc
    if not text.strip():
        raise TranscriptError(path, None, "is empty")
    return choose_reader(path, text, fmt).read(text, str(path))


NO_TRANSCRIPT = "no_transcript"  # the reason of a video's failed row when no transcript is beside it


def looked_for(video: str | Path) -> list[str]:
    """The names ``find_transcript`` tries beside a video, in its order (``<lang>`` stands for any tag)."""
    stem = Path(video).stem
    return [f"{stem}{s}" for s in SIDE_SUFFIXES] + [f"{stem}.<lang>.vtt", f"{stem}.<lang>.srt"]


class NoTranscriptError(DataError):
    """A video in keyword mode with no transcript beside it; the message names every file looked for."""

    reason = NO_TRANSCRIPT

    def __init__(self, video: str | Path):
        video = Path(video)
        super().__init__(f"{video}: no transcript (looked for {', '.join(looked_for(video))} in {video.parent})",
                         "put the transcript next to the video under one of these names, or pass --transcript")


def find_transcript(video: str | Path) -> Path | None:
    """The transcript beside a video: ``talk.vtt``/``.srt``/``.json``/``.tsv``/``.csv``, then ``talk.<lang>.vtt``."""
    video = Path(video)
    for suffix in SIDE_SUFFIXES:
        p = video.with_suffix(suffix)
        if p.is_file() and p != video:
            return p
    tagged = sorted(video.parent.glob(f"{_glob_escape(video.stem)}.*.vtt")) + sorted(
        video.parent.glob(f"{_glob_escape(video.stem)}.*.srt"))
    if not tagged:
        return None

    def rank(p: Path) -> tuple[int, str]:
        lang = p.name[len(video.stem) + 1:].rsplit(".", 1)[0]
        return (PREFERRED_LANGUAGES.index(lang) if lang in PREFERRED_LANGUAGES else len(PREFERRED_LANGUAGES),
                p.name)

    return min(tagged, key=rank)


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)
