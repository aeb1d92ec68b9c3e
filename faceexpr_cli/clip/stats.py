"""The run's ``stats.json`` and its one-line summary, both computed from the index rows (so a resumed run reports
the whole dataset, not only its own part)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from faceexpr_cli.dataset import format as fmt

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
    return stats


def summary_line(stats: dict[str, Any], out: str) -> str:
    ins = stats["inputs"]
    parts = [f"{stats['clips']} clips ({stats['seconds']:.1f} s) from {ins['done']} of {ins['total']} videos "
             f"into {out} ({stats['shards']} shards)"]
    if "hits_per_keyword" in stats:
        found = {k: v for k, v in stats["hits_per_keyword"].items() if v}
        if not found:
            parts = [f"no keyword found in {ins['total']} videos ({', '.join(stats['hits_per_keyword'])}); "
                     f"no clips written to {out}"]
        else:
            parts.append("hits: " + ", ".join(f"{k} {v}" for k, v in found.items()))
            if stats["keywords_not_found"]:
                parts.append("not found: " + ", ".join(stats["keywords_not_found"]))
    if stats["dropped"]:
        total = sum(stats["dropped"].values())
        parts.append(f"dropped {total} (" + ", ".join(f"{r} {n}" for r, n in stats["dropped"].items()) + ")")
    if stats["snap_seconds"] and stats["snap_seconds"]["max"] > 1e-3:
        parts.append(f"fast-cut snap up to {stats['snap_seconds']['max']:.2f} s")
    if ins["failed"]:
        parts.append(f"{ins['failed']} videos failed")
    return "; ".join(parts)
