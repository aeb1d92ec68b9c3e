"""Recipes for `fx train audio2expr` (speech -> expression) and `fx train emotion-adding` (seed 003)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from faceexpr_cli.config.recipes import SCHEMAS, RecipeBase
from faceexpr_cli.config.schemas.train_joint import ModelSpec, Ramp, ScheduleSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


class AudioData(_Strict):
    path: str | None = Field(None, description="talking-face clips with audio: an fx crop folder, an fx clip "
                                               "dataset or a folder of mp4 files")
    features: str | None = Field(None, description="targets from an fx extract-feats --features landmarks --stride 1 "
                                                   "folder instead of measuring them (data.path is then unused)")
    cache: str | None = Field(None, description="where per-clip targets are cached (default: RUN/targets)")
    face_backend: str = Field("dlib", description="face layer backend that measures the 68 landmarks")
    detect_every: int = Field(10, ge=1, description="face detection every N frames (landmarks every frame)")
    frames: int = Field(32, ge=2, description="consecutive frames per training window")
    batch_clips: int = Field(8, ge=1, description="windows per step and process")


class AudioLoss(_Strict):
    kind: Literal["l1", "l2"] = Field("l1", description="distance on the expression coefficients")


class AudioTrainer(_Strict):
    max_steps: int = Field(2000, ge=1)
    seed: int = 0
    device: str = "auto"
    log_every: int = Field(20, ge=1)
    save_every: int = Field(500, ge=0, description="0: only at the end")
    keep_checkpoints: int = Field(3, ge=1)
    tensorboard: bool = True
    threads: int | None = Field(None, ge=1, description="torch CPU threads per process")
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)


def _audio_schedule() -> ScheduleSpec:
    return ScheduleSpec(warmup_steps=100, lr=Ramp(initial=1e-4, warmup=1e-3, final=1e-4), min_lr=1e-5,
                        weights={"expression": Ramp(initial=1.0, warmup=1.0, final=1.0),
                                 "lip": Ramp(initial=1.0, warmup=1.0, final=1.0),
                                 "velocity": Ramp(initial=0.5, warmup=0.5, final=0.5)})


@SCHEMAS.register("train-audio2expr")
class Audio2ExprRecipe(RecipeBase):
    kind: Literal["train-audio2expr"] = "train-audio2expr"
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(card="audio2expr"))
    targets: Literal["landmarks"] = Field("landmarks", description="expression representation (68-point "
                                                                   "landmark offsets on a PCA basis)")
    data: AudioData = Field(default_factory=AudioData)
    loss: AudioLoss = Field(default_factory=AudioLoss)
    schedule: ScheduleSpec = Field(default_factory=_audio_schedule)
    trainer: AudioTrainer = Field(default_factory=AudioTrainer)

    @model_validator(mode="after")
    def _weights_known(self) -> Audio2ExprRecipe:
        unknown = set(self.schedule.weights) - {"expression", "lip", "velocity"}
        if unknown:
            raise ValueError(f"unknown loss weight(s) {sorted(unknown)}; known: expression, lip, velocity")
        return self


class EmotionData(_Strict):
    source_betas: str | None = Field(None, description="folder of neutral expression sequences (.npz)")
    target_betas: str | None = Field(None, description="folder of emotional sequences, paired by file name")
    frames: int = Field(32, ge=5)
    batch_clips: int = Field(8, ge=1)


@SCHEMAS.register("train-emotion-adding")
class EmotionAddingRecipe(RecipeBase):
    kind: Literal["train-emotion-adding"] = "train-emotion-adding"
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(card="emotion-adding-linear"))
    data: EmotionData = Field(default_factory=EmotionData)
    lr: float = Field(1e-3, gt=0)
    max_steps: int = Field(500, ge=1)
    seed: int = 0
    device: str = "cpu"
    log_every: int = Field(20, ge=1)
    tensorboard: bool = False
    threads: int | None = Field(1, ge=1, description="torch CPU threads (small models: one is fastest)")
