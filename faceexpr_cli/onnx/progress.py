"""Progress of an export on stderr: one row per exported part naming its stage, so a slow export says where it is."""

from __future__ import annotations

from typing import Any


class PartProgress:
    """Rows of a ``console.progress()`` bar (hidden by -q) keyed ``card.part``: PyTorch, exporting, checking
    (checker, session, parity, latency), fp16, then "exported and checked" or FAILED. ``bar=None``: no output."""

    def __init__(self, bar: Any = None):
        self.bar = bar
        self.rows: dict[str, tuple[Any, int]] = {}  # card.part -> (task id, steps)

    def stage(self, card: str, part: str, what: str, steps: int = 1, shown: bool = True, advance: int = 1) -> None:
        key = f"{card}.{part}"
        if self.bar is None or (key not in self.rows and not shown):
            return
        if key not in self.rows:
            self.rows[key] = (self.bar.add_task(f"{key}: {what}", total=steps), steps)
        else:
            self.bar.update(self.rows[key][0], description=f"{key}: {what}", advance=advance)

    def done(self, card: str, part: str, ok: bool) -> None:
        key = f"{card}.{part}"
        if self.bar is not None and key in self.rows:
            task, steps = self.rows[key]
            self.bar.update(task, description=f"{key}: {'exported and checked' if ok else 'FAILED'}", completed=steps)
