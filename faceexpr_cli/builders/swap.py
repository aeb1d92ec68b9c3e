"""Builder for the ``landmarks`` swap engine's warp/colour/blend graph (``models/swap-landmarks.yaml``)."""

from __future__ import annotations

from faceexpr_cli.builders import BUILDERS


@BUILDERS.register("swap-blend")
def build_swap_blend(levels: int = 4):
    from faceexpr_cli.swap.graph import SwapBlend

    return SwapBlend(levels=levels)
