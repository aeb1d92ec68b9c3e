"""The demo's HTML report: one section per step with its pictures, videos, tables and timings."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from faceexpr_cli.demo.framework import StepResult

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
section{border-top:1px solid #ccc;padding:.5em 0}.ok{color:#180}.failed{color:#c00}.skipped{color:#888}
img,video{max-width:100%;border:1px solid #ddd;margin:.3em 0}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}figure{margin:.5em 0}pre{background:#f6f6f6;padding:.5em}"""


def _rel(path: Path, root: Path) -> str:
    return html.escape(os.path.relpath(path, root))


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>(empty)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(results: list[StepResult], out: Path, title: str = "fx demo") -> Path:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{_CSS}</style>"
             f"</head><body><h1>{title}</h1>"]
    parts.append(_table([{"step": r.title, "status": r.status, "seconds": f"{r.seconds:.1f}"} for r in results]))
    for r in results:
        parts.append(f"<section><h2>{html.escape(r.title)} <span class='{r.status}'>{r.status}</span></h2>")
        if r.error:
            parts.append(f"<p class='{r.status}'>{html.escape(r.error)}</p>")
        for item in r.items:
            cap = f"<figcaption>{html.escape(item.caption)}</figcaption>" if item.caption else ""
            if item.kind == "text":
                parts.append(f"<p>{html.escape(str(item.value))}</p>")
            elif item.kind == "image":
                parts.append(f"<figure><img src='{_rel(item.value, out)}'>{cap}</figure>")
            elif item.kind == "video":
                parts.append(f"<figure><video controls src='{_rel(item.value, out)}'></video>{cap}</figure>")
            elif item.kind == "table":
                parts.append(f"<figure>{_table(item.value)}{cap}</figure>")
            else:
                parts.append(f"<pre>{html.escape(json.dumps(item.value, indent=1, default=str))}</pre>")
        parts.append("</section>")
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
