"""Builders for audio-driven expression (seed 003): the speech -> expression model and the emotion-adding models."""

from __future__ import annotations

from typing import Any

from faceexpr_cli.builders import BUILDERS


@BUILDERS.register("audio2expr")
def build_audio2expr(**kwargs: Any):
    from faceexpr_cli.nn.audio2expr import Audio2Expression

    return Audio2Expression(**kwargs)


@BUILDERS.register("emotion_adding_linear")
def build_emotion_linear(**kwargs: Any):
    from faceexpr_cli.nn.emotion_adding import LinearEmotion

    return LinearEmotion(**kwargs)


@BUILDERS.register("emotion_adding_transformer")
def build_emotion_transformer(**kwargs: Any):
    from faceexpr_cli.nn.emotion_adding import TransformerEmotion

    return TransformerEmotion(**kwargs)
