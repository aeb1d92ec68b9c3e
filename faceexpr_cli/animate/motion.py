"""Key point normalisation between a driving video and a source image (runs outside the exported graphs).

- absolute: the driver's key points as they are (transfers the driver's face shape: identity leaks);
- relative: ``kp_source + (kp_driving - kp_reference) * scale`` and, with relative Jacobians,
  ``J_driving J_reference^-1 J_source``;
- adapt scale: ``scale = sqrt(hull area of the source key points / that of the reference frame)``.
The arithmetic is the original ``normalize_kp``'s, so results match the original demo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from faceexpr_cli.nn.fomm.blocks import inverse2x2


@dataclass(frozen=True)
class MotionOptions:
    relative: bool = True
    relative_jacobian: bool = True
    adapt_scale: bool = False


def hull_area(points: np.ndarray | torch.Tensor) -> float:
    """Area of the convex hull of (N, 2) points (scipy's 2-D ``volume``); 0 for degenerate sets."""
    from scipy.spatial import ConvexHull, QhullError

    pts = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    try:
        return float(ConvexHull(pts.reshape(-1, 2)).volume)
    except (QhullError, ValueError):
        return 0.0


def movement_scale(source_points, reference_points) -> float:
    """sqrt(area(source)) / sqrt(area(reference)); 1 when either hull is degenerate."""
    a_src, a_ref = hull_area(source_points), hull_area(reference_points)
    if a_src <= 0 or a_ref <= 0:
        return 1.0
    return float(np.sqrt(a_src) / np.sqrt(a_ref))


def normalize_kp(kp_source: tuple[torch.Tensor, torch.Tensor], kp_driving: tuple[torch.Tensor, torch.Tensor],
                 kp_reference: tuple[torch.Tensor, torch.Tensor], options: MotionOptions = MotionOptions(),
                 scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Driving key points (value (B,K,2), jacobian (B,K,2,2)) mapped onto the source for the generator.

    ``kp_source`` and ``kp_reference`` have batch 1 and broadcast over the driving batch. ``scale`` overrides the
    convex-hull estimate (computed from batch item 0, as the original does) when ``adapt_scale`` is on.
    """
    value, jac = kp_driving
    if not options.relative:
        return value, jac
    if options.adapt_scale and scale is None:
        scale = movement_scale(kp_source[0][0], kp_reference[0][0])
    elif not options.adapt_scale:
        scale = 1.0
    new_value = (value - kp_reference[0]) * scale + kp_source[0]
    new_jac = jac
    if options.relative_jacobian:
        new_jac = torch.matmul(torch.matmul(jac, inverse2x2(kp_reference[1])), kp_source[1])
    return new_value, new_jac
