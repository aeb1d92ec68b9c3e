"""Recipes for `fx finetune-dfer train` (kind ``finetune-dfer``) and `fx train videomae` (kind ``train-videomae``).

Defaults follow MAE-DFER's fine-tuning: 16 frames at stride 4, 2 temporal x 2 spatial test views, AdamW with
layer-wise learning-rate decay 0.75, warmup + cosine, label smoothing 0.1, mixup 0.8 / cutmix 1.0, best checkpoint
by WAR. Pretraining: VideoMAE tube masking at 90% with appearance (normalised pixels) + motion (frame difference)
targets.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from faceexpr_cli.config.recipes import SCHEMAS, RecipeBase
from faceexpr_cli.config.schemas.train_joint import ModelSpec, _betas, _Strict


class ClipSampling(_Strict):
    size: int = Field(160, ge=16, description="frames are resized to size x size (short side, then crops)")
    frames: int = Field(16, ge=2, description="frames per clip")
    stride: int = Field(4, ge=1, description="step between sampled frames (MAE-DFER: 4)")
    batch_clips: int = Field(8, ge=1, description="clips per step")
    cache_clips: int = Field(256, ge=0, description="decoded clips kept in memory")
    workers: int = Field(2, ge=0, description="threads decoding the next batch ahead")


class DferData(ClipSampling):
    train: str | None = Field(None, description="training annotation file (or --train)")
    test: str | None = Field(None, description="test annotation file (or --test)")
    labels: str = Field("dfew", description="label map: a built-in name (dfew, common, mafw-mae-dfer, ...) or a file")
    test_temporal_views: int = Field(2, ge=1, description="evenly spaced windows per test clip")
    test_spatial_views: int = Field(2, ge=1, description="crops along the long side per test window")
    balanced: bool = Field(False, description="draw training clips with class-balanced probabilities")
    flip: bool = Field(True, description="random horizontal flips while training")
    min_scale: float = Field(0.7, gt=0, le=1, description="random crops cover at least this share of the side")


class DferLoss(_Strict):
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    mixup: float = Field(0.8, ge=0, description="mixup Beta(a, a); 0: off")
    cutmix: float = Field(1.0, ge=0, description="cutmix Beta(a, a); 0: off (one of the two per batch)")
    mix_prob: float = Field(1.0, ge=0, le=1, description="share of batches mixed")
    num_regression: int = Field(0, ge=0, description="extra regression outputs (e.g. 2 for gaze pitch, yaw)")
    alpha: float = Field(1.0, ge=0, le=1, description="alpha * cross-entropy + (1 - alpha) * MSE")


class DferOptim(_Strict):
    lr: float = Field(1e-3, ge=0, description="peak learning rate of the top layer")
    min_lr: float = Field(1e-6, ge=0)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.05, ge=0)
    layer_decay: float = Field(0.75, gt=0, le=1, description="lr of layer i = lr * decay^(depth + 1 - i)")
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = Field(None, gt=0)

    _check_betas = field_validator("betas")(_betas)


class DferTrainer(_Strict):
    max_steps: int = Field(1000, ge=1)
    seed: int = 0
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    log_every: int = Field(10, ge=1)
    eval_every: int = Field(0, ge=0, description="evaluate on the test file every N steps (0: at the end only)")
    save_every: int = Field(0, ge=0, description="checkpoint every N steps (0: at the end only)")
    keep_checkpoints: int = Field(2, ge=1)
    tensorboard: bool = True
    threads: int = Field(0, ge=0, description="torch CPU threads (0: torch's default)")
    best_by: Literal["war", "uar"] = "war"


@SCHEMAS.register("finetune-dfer")
class FinetuneDferRecipe(RecipeBase):
    kind: Literal["finetune-dfer"]
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(card="videomae-base"))
    data: DferData = Field(default_factory=DferData)
    loss: DferLoss = Field(default_factory=DferLoss)
    optim: DferOptim = Field(default_factory=DferOptim)
    trainer: DferTrainer = Field(default_factory=DferTrainer)


class DecoderSpec(_Strict):
    dim: int = Field(384, ge=8)
    depth: int = Field(4, ge=1)
    heads: int = Field(6, ge=1)


class PretrainData(ClipSampling):
    path: str | None = Field(None, description="unlabelled clips: a folder of videos or an annotation file")


class PretrainOptim(_Strict):
    lr: float = Field(1.5e-4, ge=0)
    min_lr: float = Field(1e-6, ge=0)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = Field(None, gt=0)

    _check_betas = field_validator("betas")(_betas)


@SCHEMAS.register("train-videomae")
class TrainVideoMAERecipe(RecipeBase):
    kind: Literal["train-videomae"]
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(card="videomae-pretrain"))
    decoder: DecoderSpec = Field(default_factory=DecoderSpec)
    mask_ratio: float = Field(0.9, gt=0, lt=1)
    motion_weight: float = Field(1.0, ge=0, description="weight of the frame-difference target")
    data: PretrainData = Field(default_factory=PretrainData)
    optim: PretrainOptim = Field(default_factory=PretrainOptim)
    trainer: DferTrainer = Field(default_factory=DferTrainer)
