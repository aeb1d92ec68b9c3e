"""Demo steps and the run that chains them.

A step is a module under ``faceexpr_cli.demo.steps`` that registers a ``DemoStep``. Steps run in ``order``;
each reads what earlier steps left in ``ctx.state`` (e.g. ``state["sample_video"]``) and adds report items.
A failing step is recorded and the demo goes on with the steps that do not need its output.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceexpr_cli.registry import Registry


@dataclass
class ReportItem:
    kind: str  # "text", "image", "video", "table", "json"
    value: Any
    caption: str = ""


@dataclass
class StepResult:
    name: str
    title: str
    status: str = "ok"  # ok | failed | skipped
    seconds: float = 0.0
    error: str | None = None
    items: list[ReportItem] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoContext:
    out: Path
    recipe: Any
    state: dict[str, Any] = field(default_factory=dict)
    current: StepResult | None = None

    def path(self, name: str) -> Path:
        p = self.out / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def text(self, text: str) -> None:
        self._add(ReportItem("text", text))

    def image(self, path: Path, caption: str = "") -> None:
        self._add(ReportItem("image", Path(path), caption))

    def video(self, path: Path, caption: str = "") -> None:
        self._add(ReportItem("video", Path(path), caption))

    def table(self, rows: list[dict[str, Any]], caption: str = "") -> None:
        self._add(ReportItem("table", rows, caption))

    def summary(self, **values: Any) -> None:
        assert self.current is not None
        self.current.summary.update(values)

    def _add(self, item: ReportItem) -> None:
        assert self.current is not None
        self.current.items.append(item)


@dataclass
class DemoStep:
    name: str
    title: str
    order: int
    run: Callable[[DemoContext], None]
    needs: tuple[str, ...] = ()  # state keys that must exist for the step to run


STEPS: Registry[DemoStep] = Registry("demo step", discover="faceexpr_cli.demo.steps")


def demo_step(name: str, title: str, order: int, needs: tuple[str, ...] = ()):
    """Decorator: register ``fn(ctx)`` as a demo step."""

    def deco(fn: Callable[[DemoContext], None]) -> Callable[[DemoContext], None]:
        STEPS.add(name, DemoStep(name, title, order, fn, needs))
        return fn

    return deco


def ordered_steps() -> list[DemoStep]:
    return sorted((STEPS.get(n) for n in STEPS.names()), key=lambda s: (s.order, s.name))


def run_demo(out: Path, recipe: Any, only: list[str] | None = None,
             on_step: Callable[[StepResult], None] | None = None) -> list[StepResult]:
    from faceexpr_cli.console import log
    from faceexpr_cli.errors import FxError

    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out=out, recipe=recipe)
    results: list[StepResult] = []
    for step in ordered_steps():
        res = StepResult(step.name, step.title)
        results.append(res)
        missing = [k for k in step.needs if k not in ctx.state]
        if step.name in recipe.skip or (only and step.name not in only):
            res.status = "skipped"
            res.error = "not asked for"
        elif missing:
            res.status = "skipped"
            res.error = f"needs {', '.join(missing)} from an earlier step"
        else:
            log.debug("demo: %s", step.title)
            ctx.current = res
            t = time.perf_counter()
            try:
                step.run(ctx)
            except FxError as exc:
                res.status, res.error = "failed", exc.one_line()
            except Exception as exc:  # the demo reports a broken step and goes on
                res.status, res.error = "failed", f"{type(exc).__name__}: {exc}"
                log.debug(traceback.format_exc())
            res.seconds = time.perf_counter() - t
        if on_step:
            on_step(res)
    return results
