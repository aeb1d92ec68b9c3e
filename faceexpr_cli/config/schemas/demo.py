"""The `fx demo` recipe: what the embedded demo builds and runs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from faceexpr_cli.config.recipes import SCHEMAS, RecipeBase


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DemoVideo(_Strict):
    portrait: Literal["astronaut", "grace_hopper"] = "astronaut"
    seconds: float = Field(4.0, gt=0, le=120)
    fps: float = Field(25.0, gt=0, le=120)
    width: int = Field(320, ge=64, le=3840)
    height: int = Field(256, ge=64, le=2160)
    seed: int = 0


class DemoCut(_Strict):
    start: float = Field(1.0, ge=0)
    end: float = Field(2.5, gt=0)


@SCHEMAS.register("demo")
class DemoRecipe(RecipeBase):
    kind: Literal["demo"] = "demo"
    video: DemoVideo = Field(default_factory=DemoVideo)
    cut: DemoCut = Field(default_factory=DemoCut)
    skip: list[str] = Field(default_factory=list, description="demo steps to leave out, by name")
