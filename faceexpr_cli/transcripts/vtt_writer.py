"""Writing word-timed WebVTT the way YouTube's auto-captions look (rolling lines, inline word times).

Used to give generated videos a realistic transcript (the demo, tests): reading it back exercises the same path
as a caption file downloaded with yt-dlp.
"""

from __future__ import annotations

from pathlib import Path


def clock(t: float) -> str:
    ms = int(round(max(0.0, t) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def youtube_vtt(words: list[tuple[str, float, float]], words_per_line: int = 5) -> str:
    """``[(text, start, end), ...]`` -> WebVTT text with YouTube's rolling two-line cues and 10 ms repeats."""
    lines = [words[i:i + words_per_line] for i in range(0, len(words), words_per_line)]
    out = ["WEBVTT", "Kind: captions", "Language: en", ""]
    previous = ""
    for k, line in enumerate(lines):
        start = line[0][1]
        end = lines[k + 1][0][1] if k + 1 < len(lines) else line[-1][2]
        end = max(end, start + 0.02)
        timed = line[0][0] + "".join(f"<{clock(s)}><c> {w}</c>" for w, s, _ in line[1:])
        out += [f"{clock(start)} --> {clock(end - 0.01)} align:start position:0%", previous or " ", timed, ""]
        previous = " ".join(w for w, _, _ in line)
        out += [f"{clock(end - 0.01)} --> {clock(end)} align:start position:0%", previous, " ", ""]
    return "\n".join(out)


def write_youtube_vtt(path: str | Path, words: list[tuple[str, float, float]], words_per_line: int = 5) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(youtube_vtt(words, words_per_line), encoding="utf-8")
    tmp.replace(path)
    return path
