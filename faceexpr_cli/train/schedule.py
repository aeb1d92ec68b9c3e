"""One piecewise-linear schedule drives the learning rate and every loss weight (the seed's combined scheduler).

Each quantity goes initial -> warmup value over ``warmup_steps``, then -> final value at ``total_steps``, and
stays there. The value is a pure function of the step, so resuming only needs the step; ``state_dict`` still
records the settings so a resumed run can tell that they changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Ramp:
    initial: float
    warmup: float
    final: float

    def at(self, step: int, warmup_steps: int, total_steps: int) -> float:
        if step < warmup_steps:
            return self.initial + (self.warmup - self.initial) * step / warmup_steps
        span = max(total_steps - warmup_steps, 1)
        progress = min((step - warmup_steps) / span, 1.0)
        return self.warmup + (self.final - self.warmup) * progress


@dataclass
class CombinedSchedule:
    warmup_steps: int
    total_steps: int
    lr: Ramp
    min_lr: float = 0.0
    weights: dict[str, Ramp] = field(default_factory=dict)
    step: int = 0

    @classmethod
    def from_spec(cls, spec, max_steps: int) -> CombinedSchedule:
        def ramp(r) -> Ramp:
            return Ramp(r.initial, r.warmup, r.final)

        return cls(spec.warmup_steps, spec.total_steps or max_steps, ramp(spec.lr), spec.min_lr,
                   {k: ramp(v) for k, v in spec.weights.items()})

    def lr_at(self, step: int) -> float:
        return max(self.lr.at(step, self.warmup_steps, self.total_steps), self.min_lr)

    def weights_at(self, step: int) -> dict[str, float]:
        return {k: r.at(step, self.warmup_steps, self.total_steps) for k, r in self.weights.items()}

    def apply(self, optimizer, step: int) -> tuple[float, dict[str, float]]:
        """Set the optimizer's LR for ``step`` (0-based) and return (lr, loss weights)."""
        self.step = step
        lr = self.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr, self.weights_at(step)

    def state_dict(self) -> dict:
        return {"step": self.step, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "lr": asdict(self.lr), "min_lr": self.min_lr, "weights": {k: asdict(v) for k, v in self.weights.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
