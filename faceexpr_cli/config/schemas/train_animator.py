"""Recipe for `fx train animator`: First Order Motion Model training (the original's train_params as defaults)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from faceexpr_cli.config.recipes import SCHEMAS, RecipeBase


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


class AnimatorModel(_Strict):
    card: str = "fomm-vox256"
    tiny: bool = Field(False, description="the card's tiny arguments (smoke runs)")
    config: str | None = Field(None, description="an original FOMM YAML whose model_params replace the preset")
    init: str | None = Field(None, description="checkpoint (original layout) to start from")


class Jitter(_Strict):
    brightness: float = Field(0.1, ge=0, le=1)
    contrast: float = Field(0.1, ge=0, le=1)
    saturation: float = Field(0.1, ge=0, le=1)
    hue: float = Field(0.1, ge=0, le=0.5)


class Augmentation(_Strict):
    horizontal_flip: bool = True
    time_flip: bool = True
    jitter: Jitter = Field(default_factory=Jitter)


class AnimatorData(_Strict):
    path: str | None = Field(None, description="folder of mp4 clips / frame folders (fx crop output works), or "
                                               "'sample' to build the sample talking head")
    frame_size: int = Field(256, ge=32, description="frames are resized to this square size")
    id_sampling: bool = Field(True, description="sample identities uniformly, then one of their videos")
    id_from: Literal["prefix", "parent", "stem"] = Field(
        "prefix", description="prefix: the part before '#' (VoxCeleb names), parent: the folder, stem: the file")
    num_repeats: int = Field(75, ge=1, description="passes over the identities per epoch")
    cache_frames: bool = Field(False, description="decode each video once and keep its frames in memory")
    max_frames: int | None = Field(None, ge=2, description="frames used per video (from its start)")
    workers: int = Field(2, ge=0)
    augmentation: Augmentation = Field(default_factory=Augmentation)


class TransformParams(_Strict):
    sigma_affine: float = Field(0.05, ge=0)
    sigma_tps: float = Field(0.005, ge=0)
    points_tps: int = Field(5, ge=2)


class LossWeights(_Strict):
    generator_gan: float = Field(0.0, ge=0)
    discriminator_gan: float = Field(1.0, ge=0)
    feature_matching: list[float] = Field(default_factory=lambda: [10.0, 10.0, 10.0, 10.0])
    perceptual: list[float] = Field(default_factory=lambda: [10.0] * 5)
    equivariance_value: float = Field(10.0, ge=0)
    equivariance_jacobian: float = Field(10.0, ge=0)

    @model_validator(mode="after")
    def _five_vgg_layers(self):
        if len(self.perceptual) != 5:
            raise ValueError("perceptual needs 5 weights (relu1_1 .. relu5_1)")
        if any(w < 0 for w in [*self.perceptual, *self.feature_matching]):
            raise ValueError("loss weights must be >= 0")
        return self


class Vgg(_Strict):
    weights: str | None = Field(None, description="explicit vgg19-dcbb9e9d.pth; else the vgg19-imagenet cache")
    random_init: bool = Field(False, description="random VGG weights: tests and smoke runs only")


class AnimatorTrain(_Strict):
    num_epochs: int = Field(100, ge=1)
    max_steps: int | None = Field(None, ge=1, description="stop after this many steps (smoke runs)")
    epoch_milestones: list[int] = Field(default_factory=lambda: [60, 90])
    lr_generator: float = Field(2.0e-4, gt=0)
    lr_discriminator: float = Field(2.0e-4, gt=0)
    lr_kp_detector: float = Field(2.0e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    batch_size: int = Field(40, ge=1, description="per process")
    scales: list[float] = Field(default_factory=lambda: [1, 0.5, 0.25, 0.125])

    @field_validator("betas")
    @classmethod
    def _betas(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in value):
            raise ValueError(f"betas must lie in [0, 1), got {list(value)}")
        return value

    @field_validator("scales")
    @classmethod
    def _scales(cls, value: list[float]) -> list[float]:
        if not value or not all(0 < s <= 1 for s in value):
            raise ValueError(f"scales must be a non-empty list of numbers in (0, 1], got {value}")
        return value
    checkpoint_freq: int = Field(50, ge=1, description="epochs between checkpoints (and one at the end)")
    log_every: int = Field(10, ge=1, description="steps between logged scalars")
    transform_params: TransformParams = Field(default_factory=TransformParams)
    loss_weights: LossWeights = Field(default_factory=LossWeights)
    vgg: Vgg = Field(default_factory=Vgg)
    device: str = "auto"
    seed: int = 0
    tensorboard: bool = True


@SCHEMAS.register("train-animator")
class AnimatorRecipe(RecipeBase):
    kind: Literal["train-animator"] = "train-animator"
    model: AnimatorModel = Field(default_factory=AnimatorModel)
    data: AnimatorData = Field(default_factory=AnimatorData)
    train: AnimatorTrain = Field(default_factory=AnimatorTrain)
