"""The end-of-run summary on stdout: counts, bytes and rate, then the failures with their reasons."""

from __future__ import annotations

from collections import Counter

from faceexpr_cli.console import print_table
from faceexpr_cli.download.runner import RunResult

MAX_FAILURE_ROWS = 20


def print_summary(result: RunResult) -> None:
    s = result.summary()
    rows = [{"dest": s["dest"], "items": s["items"], "ok": s["ok"], "skipped": s["skipped"], "failed": s["failed"],
             "MB": round(s["bytes"] / 1e6, 1), "seconds": round(s["seconds"], 1), "MB/s": s["mb_per_s"]}]
    print_table(rows, list(rows[0]), title="fx download")
    failed = result.failed
    if not failed:
        return
    kinds = Counter(r.get("error_class") for r in failed)
    title = "failures: " + ", ".join(f"{k} x{n}" for k, n in kinds.most_common())
    shown = [{"key": r["key"], "error_class": r.get("error_class"), "attempts": r.get("attempts"),
              "error": r.get("error")} for r in failed[:MAX_FAILURE_ROWS]]
    if len(failed) > MAX_FAILURE_ROWS:
        shown.append({"key": f"... {len(failed) - MAX_FAILURE_ROWS} more in the status manifest"})
    print_table(shown, ["key", "error_class", "attempts", "error"], title=title)
