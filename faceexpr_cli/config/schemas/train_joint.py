"""Recipes for `fx train joint` (expression transformer + reconstruction) and `fx train expression` (predictor).

Model sizes come from cards (``card`` + ``args`` laid over the preset); the image size, the token width and the
expression width are derived by the trainer from ``data.size`` and the tokenizer, so they are set in one place.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from faceexpr_cli.config.recipes import SCHEMAS, RecipeBase


class _Strict(BaseModel):
    # NaN and infinity are refused in every number field (a NaN learning rate trains garbage without a word)
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


def _finite_args(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite_args(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _finite_args(v, f"{where}[{i}]")


def _betas(value: tuple[float, float]) -> tuple[float, float]:
    if not all(0 <= b < 1 for b in value):
        raise ValueError(f"betas must lie in [0, 1), got {list(value)}")
    return value


class ModelSpec(_Strict):
    card: str
    args: dict[str, Any] = Field(default_factory=dict, description="builder arguments over the card's preset")
    tiny: bool = Field(False, description="start from the card's tiny arguments (smoke runs)")
    init: str | None = Field(None, description="weights to start from: a run dir, a checkpoint dir or a .safetensors")

    @field_validator("args")
    @classmethod
    def _args_finite(cls, value: dict[str, Any]) -> dict[str, Any]:
        _finite_args(value, "args")
        return value


class TokenizerSpec(ModelSpec):
    card: str = "dinov2-vits14"
    weights: str | None = Field(None, description="explicit DINOv2 weights file or directory; else the cache")
    source: str | None = Field(None, description="which of the card's weight sources to look up in the cache")
    random_init: bool = Field(False, description="random tokenizer weights: tests and smoke runs only")


class DataSpec(_Strict):
    path: str | None = Field(None, description="clip folder or dataset of shards; 'sample' builds the sample clips")
    size: int = Field(518, ge=14, description="frames are resized to size x size (a multiple of the patch size)")
    frames: int = Field(30, ge=2, description="consecutive frames per training clip")
    batch_clips: int = Field(2, ge=1, description="clips per step and process")
    fps: float | None = Field(None, gt=0, description="resample clips to this rate (None: as stored)")
    workers: int = Field(2, ge=0, description="threads decoding the next batches ahead")
    cache_clips: int = Field(64, ge=0, description="decoded clips kept in memory")
    subjects: str | None = Field(None, description="a subjects.json to reuse (e.g. from an earlier run)")
    subject_from: str = Field("auto", min_length=1,
                              description="who is in a clip: auto (the subject a record names, else the source "
                                          "video), source, track (source + face track) or a manifest column")


class Ramp(_Strict):
    """initial -> warmup (at warmup_steps) -> final (at total_steps), linear in between."""

    initial: float = Field(ge=0)
    warmup: float = Field(ge=0)
    final: float = Field(ge=0)


def _weights() -> dict[str, Ramp]:
    return {"reconstruction": Ramp(initial=0.1, warmup=0.2, final=0.5),
            "temporal": Ramp(initial=0.4, warmup=0.3, final=0.2),
            "diversity": Ramp(initial=0.3, warmup=0.2, final=0.2)}


class ScheduleSpec(_Strict):
    warmup_steps: int = Field(3000, ge=0)
    total_steps: int | None = Field(None, description="end of the decay (None: trainer.max_steps)")
    lr: Ramp = Field(default_factory=lambda: Ramp(initial=1e-6, warmup=5e-5, final=1e-6))
    min_lr: float = Field(1e-6, ge=0)
    weights: dict[str, Ramp] = Field(default_factory=_weights)


class TemporalSpec(_Strict):
    coherence: float = Field(0.7, ge=0)
    contrast: float = Field(0.3, ge=0)
    stride: int = Field(5, ge=1)


class LossSpec(_Strict):
    temporal: TemporalSpec = Field(default_factory=TemporalSpec)
    diversity_stride: int = Field(5, ge=1)
    perceptual: float = Field(0.0, ge=0, description="weight of a tokenizer-feature term added to the MSE")
    prediction: Literal["mse", "cosine"] = "mse"


class OptimSpec(_Strict):
    weight_decay: float = Field(0.01, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = Field(1.0, gt=0)

    _check_betas = field_validator("betas")(_betas)


class TrainerSpec(_Strict):
    max_steps: int = Field(1000, ge=1)
    seed: int = 0
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    log_every: int = Field(10, ge=1)
    eval_every: int = Field(500, ge=0, description="0: only at the end")
    eval_frames: int = Field(60, ge=2)
    save_every: int = Field(500, ge=0, description="0: only at the end")
    keep_checkpoints: int = Field(3, ge=1)
    tensorboard: bool = True
    freeze_expression_transformer: bool = False
    threads: int | None = Field(None, ge=1, description="torch CPU threads per process")


class _TrainBase(RecipeBase):
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    optim: OptimSpec = Field(default_factory=OptimSpec)
    loss: LossSpec = Field(default_factory=LossSpec)
    trainer: TrainerSpec = Field(default_factory=TrainerSpec)

    @model_validator(mode="after")
    def _size_fits_patches(self) -> _TrainBase:
        """data.size must be a multiple of the tokenizer's patch size: checked here, before any model is built."""
        from faceexpr_cli.config.cards import load_card
        from faceexpr_cli.errors import FxError

        try:
            card = load_card(self.tokenizer.card)
        except FxError:
            return self  # an unknown card is reported by the runner, with its own message
        patch = (card.arguments(tiny=self.tokenizer.tiny) | self.tokenizer.args).get("patch_size")
        if isinstance(patch, int) and patch > 0 and self.data.size % patch:
            lower, upper = self.data.size // patch * patch, (self.data.size // patch + 1) * patch
            raise ValueError(f"data.size {self.data.size} is not a multiple of the tokenizer's patch size {patch} "
                             f"(e.g. {max(lower, patch)} or {upper})")
        return self


@SCHEMAS.register("train-joint")
class JointRecipe(_TrainBase):
    kind: Literal["train-joint"] = "train-joint"
    expression: ModelSpec = Field(default_factory=lambda: ModelSpec(card="expression-transformer"))
    reconstruction: ModelSpec = Field(default_factory=lambda: ModelSpec(card="reconstruction"))
    tie_subjects: bool = Field(True, description="the reconstruction uses the expression transformer's subject rows")
    tie_delta_pos: bool = Field(True, description="... and its delta positional embedding (the seed's sharing)")
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)

    @model_validator(mode="after")
    def _weights_known(self) -> JointRecipe:
        unknown = set(self.schedule.weights) - {"reconstruction", "temporal", "diversity"}
        if unknown:
            raise ValueError(f"unknown loss weight(s) {sorted(unknown)}; known: reconstruction, temporal, diversity")
        return self


def _prediction_schedule() -> ScheduleSpec:
    return ScheduleSpec(weights={"prediction": Ramp(initial=1.0, warmup=1.0, final=1.0)})


@SCHEMAS.register("train-expression")
class ExpressionRecipe(_TrainBase):
    """Next-token prediction on a trained expression transformer's tokens (the seed's prediction training)."""

    kind: Literal["train-expression"] = "train-expression"
    expression: ModelSpec = Field(default_factory=lambda: ModelSpec(card="expression-transformer"))
    predictor: ModelSpec = Field(default_factory=lambda: ModelSpec(card="expression-predictor"))
    schedule: ScheduleSpec = Field(default_factory=_prediction_schedule)

    @model_validator(mode="after")
    def _defaults(self) -> ExpressionRecipe:
        unknown = set(self.schedule.weights) - {"prediction"}
        if unknown:
            raise ValueError(f"unknown loss weight(s) {sorted(unknown)}; known: prediction")
        return self
