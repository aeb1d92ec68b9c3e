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
