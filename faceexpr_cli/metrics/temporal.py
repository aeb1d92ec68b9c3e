"""Over time: correlation of two curves, and the flicker a result adds to the face region beyond the driver's."""

from __future__ import annotations

import numpy as np


def correlation(a, b) -> float | None:
    """Pearson correlation over the frames where both are known; None with fewer than 3 such frames or a flat
    curve."""
    x = np.array([np.nan if v is None else v for v in a], np.float64)
    y = np.array([np.nan if v is None else v for v in b], np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or x[ok].std() < 1e-9 or y[ok].std() < 1e-9:
        return None
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def temporal_jitter(result: list[np.ndarray], driver: list[np.ndarray]) -> list[float | None]:
    """Per frame (from the second): mean absolute difference, in [0, 1], between the result's change from the
    previous frame and the driver's change, over same-sized face-region crops. A result that moves exactly as
    its driver scores 0; a seam or a colour that flickers scores above it."""
    out: list[float | None] = [None]
    for i in range(1, min(len(result), len(driver))):
        r0, r1, d0, d1 = result[i - 1], result[i], driver[i - 1], driver[i]
        if any(x is None for x in (r0, r1, d0, d1)):
            out.append(None)
            continue
        dr = r1.astype(np.float32) - r0.astype(np.float32)
        dd = d1.astype(np.float32) - d0.astype(np.float32)
        out.append(float(np.abs(dr - dd).mean() / 255.0))
    return out
