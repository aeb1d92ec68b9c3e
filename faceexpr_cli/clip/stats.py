"""The run's ``stats.json`` and its one-line summary, both computed from the index rows (so a resumed run reports
the whole dataset, not only its own part)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from faceexpr_cli.dataset import format as fmt
from faceexpr_cli.transcripts.loading import NO_TRANSCRIPT, looked_for

SEP = "|"  # joins the keywords / matched texts of hits merged into one clip


def build_stats(rows: list[dict], *, keywords: list[str] | None, inputs_total: int, skipped: int,
                wall_seconds: float, settings: dict[str, Any], shards: int) -> dict[str, Any]:
    ok = [r for r in rows if r["status"] == fmt.OK]
    failed = [r for r in rows if r["status"] == fmt.FAILED]
    dropped = [r for r in rows if r["status"] == fmt.DROPPED]
    done = {r["source"] for r in rows if r["status"] == fmt.INPUT_DONE}
    hits: Counter[str] = Counter()
    clips: Counter[str] = Counter()
    for r in ok:
        kws = [k for k in (r["keyword"] or "").split(SEP) if k]
        hits.update(kws)
        clips.update(set(kws))
    dropped_by: dict[str, Counter[str]] = {}
    for r in dropped:
        if r["keyword"]:
            hits[r["keyword"]] += 1
        dropped_by.setdefault(r["reason"] or "unknown", Counter())[r["keyword"] or "(random)"] += 1
    snaps = [abs(r["snap"]) for r in ok if r["snap"] is not None]
    stats: dict[str, Any] = {
        "inputs": {"total": inputs_total, "done": len(done), "failed": len({r["source"] for r in failed}),
                   "skipped_as_done": skipped},
        "clips": len(ok),
        "shards": shards,
        "seconds": round(sum(r["duration"] or 0.0 for r in ok), 3),
        "bytes": sum(r["bytes"] or 0 for r in ok),
        "dropped": {reason: sum(c.values()) for reason, c in sorted(dropped_by.items())},
        "dropped_per_keyword": {reason: dict(c) for reason, c in sorted(dropped_by.items())},
        "failed": [{"source": r["source"], "error": r["error"]} for r in failed[:50]],
        "snap_seconds": {"mean": round(sum(snaps) / len(snaps), 4), "max": round(max(snaps), 4)} if snaps else None,
        "wall_seconds": round(wall_seconds, 2),
        "settings": settings,
    }
    if keywords is not None:
        stats["hits_per_keyword"] = {k: hits.get(k, 0) for k in keywords}
        stats["clips_per_keyword"] = {k: clips.get(k, 0) for k in keywords}
        stats["keywords_not_found"] = [k for k in keywords if not hits.get(k)]
        stats["no_transcript"] = sorted({r["source"] for r in failed if r.get("reason") == NO_TRANSCRIPT})
    return stats


def summary_line(stats: dict[str, Any], out: str) -> str:
    ins = stats["inputs"]
    parts = [f"{stats['clips']} clips ({stats['seconds']:.1f} s) from {ins['done']} of {ins['total']} videos "
             f"into {out} ({stats['shards']} shards)"]
    if "hits_per_keyword" in stats:
        found = {k: v for k, v in stats["hits_per_keyword"].items() if v}
        missing = stats.get("no_transcript") or []
        searched = ins["total"] - len(missing)  # videos whose transcript was there to search
        if not found:
            parts = []
            if searched:
                parts.append(f"no keyword found in {searched} videos{' with a transcript' if missing else ''} "
                             f"({', '.join(stats['hits_per_keyword'])})")
            if missing:
                parts.append(_no_transcript(missing))
            parts.append(f"no clips written to {out}")
        else:
            parts.append("hits: " + ", ".join(f"{k} {v}" for k, v in found.items()))
            if stats["keywords_not_found"]:
                parts.append("not found: " + ", ".join(stats["keywords_not_found"]))
            if missing:
                parts.append(_no_transcript(missing))
    if stats["dropped"]:
        total = sum(stats["dropped"].values())
        parts.append(f"dropped {total} (" + ", ".join(f"{r} {n}" for r, n in stats["dropped"].items()) + ")")
    if stats["snap_seconds"] and stats["snap_seconds"]["max"] > 1e-3:
        parts.append(f"fast-cut snap up to {stats['snap_seconds']['max']:.2f} s")
    if ins["failed"]:
        parts.append(f"{ins['failed']} videos failed")
    return "; ".join(parts)


def _no_transcript(sources: list[str], shown: int = 5) -> str:
    """"no transcript for talk.mp4 (looked for talk.vtt, ...)": the names looked for beside the first video."""
    first = Path(sources[0])
    text = f"no transcript for {first.name} (looked for {', '.join(looked_for(first))} beside it)"
    if len(sources) > 1:
        others = [Path(x).name for x in sources[1:shown]]
        more = f" and {len(sources) - shown} more" if len(sources) > shown else ""
        text += f", nor for {', '.join(others)}{more} (the same names for each)"
    return text
