"""MAE-DFER's LGI-Former builder. Its released checkpoints (keys under ``model``/``module``, ``encoder.`` or
``backbone.`` prefixes, the pretraining decoder left out, a head of another size dropped) load through
``builders.videomae.load_videomae_weights``: the layout is the original VideoMAE one with LGI-Former block names."""

from __future__ import annotations

from typing import Any

from faceexpr_cli.builders import BUILDERS


@BUILDERS.register("lgi-former")
def build_lgi_former(**kwargs: Any):
    from faceexpr_cli.nn.lgi_former import LGIFormer

    kwargs.pop("labels", None)
    kwargs.pop("sampling", None)
    return LGIFormer(**kwargs)


@BUILDERS.register("dfer-tokens")
def build_dfer_tokens(**kwargs: Any):
    from faceexpr_cli.nn.dfer_tokens import TemporalTokens

    for k in ("labels", "sampling", "image_size"):
        kwargs.pop(k, None)
    return TemporalTokens(**kwargs)


@BUILDERS.register("dfer-tokens-emotion")
def build_dfer_tokens_emotion(extractor_size: int = 64, extractor_args: dict | None = None,
                              extractor_weights: str = "cache", image_size: int = 64, **kwargs: Any):
    """``dfer-tokens`` over the emotion model's per-frame logits. ``extractor_weights``: ``cache`` (the
    emotion-minixception weights from the cache, loaded by the run) or ``random`` (tests and smoke runs)."""
    from faceexpr_cli.builders import build_model
    from faceexpr_cli.nn.dfer_tokens import FrameFeatureClassifier, TemporalTokens

    for k in ("labels", "sampling"):
        kwargs.pop(k, None)
    extractor = build_model("emotion-minixception", **(extractor_args or {}))
    temporal = TemporalTokens(feature_dim=extractor.num_classes, **kwargs)
    model = FrameFeatureClassifier(extractor, temporal, extractor_size, image_size, kwargs.get("frames", 16))
    model.extractor_weights = extractor_weights
    return model
