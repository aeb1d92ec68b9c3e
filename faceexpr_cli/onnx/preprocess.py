"""Pre- and post-processing shared by the Torch and ONNX predictors (and by the exporter's real-sample check).

Both backends receive exactly the arrays made here, so a difference between them is the graph's and nothing else.
The card's ``input`` contract decides size, layout, colour order, value range and normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceexpr_cli.config.cards import InputContract
from faceexpr_cli.errors import DataError

SAMPLE_PORTRAITS = ("astronaut", "grace_hopper")


def contract_size(contract: InputContract | None) -> tuple[int, int] | None:
    if contract is None or contract.size is None:
        return None
    size = contract.size
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[-1]))


def _as_batch(images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    if isinstance(images, np.ndarray):
        arr = images
    else:
        shapes = {np.asarray(im).shape for im in images}
        if len(shapes) != 1:
            raise DataError(f"images of different sizes in one batch: {sorted(shapes)}", "crop/resize them first")
        arr = np.stack([np.asarray(im) for im in images])
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim < 4 or arr.shape[-1] not in (1, 3, 4):
        raise DataError(f"expected RGB images (H, W, 3) or a batch (N, H, W, 3), got shape {arr.shape}")
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr


def resize_batch(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(..., H, W, 3) float32 -> (..., h, w, 3), antialiased bilinear (torch, so it matches training)."""
    import torch
    import torch.nn.functional as F

    if frames.shape[-3:-1] == tuple(size):
        return frames
    lead = frames.shape[:-3]
    x = torch.from_numpy(np.ascontiguousarray(frames.reshape(-1, *frames.shape[-3:]))).permute(0, 3, 1, 2)
    y = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return y.permute(0, 2, 3, 1).reshape(*lead, *size, 3).numpy()


def prepare_images(images: np.ndarray | Sequence[np.ndarray], contract: InputContract | None) -> np.ndarray:
    """RGB uint8 frames ``(H, W, 3)``, ``(N, H, W, 3)`` or ``(N, T, H, W, 3)`` -> the float32 batch a model takes."""
    contract = contract or InputContract()
    arr = _as_batch(images)
    x = arr.astype(np.float32) / (255.0 if arr.dtype == np.uint8 else 1.0)
    size = contract_size(contract)
    if size is not None:
        x = resize_batch(x, size)
    if contract.color == "BGR":
        x = x[..., ::-1]
    elif contract.color == "GRAY":
        x = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    lo, hi = contract.value_range
    x = lo + (hi - lo) * x
    if contract.mean is not None:
        x = x - np.asarray(contract.mean, np.float32)
    if contract.std is not None:
        x = x / np.asarray(contract.std, np.float32)
    if contract.layout in ("NCHW", "NTCHW"):
        x = np.moveaxis(x, -1, -3)
    return np.ascontiguousarray(x, dtype=np.float32)


def images_from_output(x: np.ndarray, contract: InputContract | None = None) -> np.ndarray:
    """A model's image output (N, C, H, W) in the contract's value range -> uint8 (N, H, W, 3) RGB."""
    contract = contract or InputContract()
    lo, hi = contract.value_range
    arr = np.moveaxis(np.asarray(x, np.float32), -3, -1) if contract.layout in ("NCHW", "NTCHW") else np.asarray(x)
    arr = (arr - lo) / (hi - lo)
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def sample_faces(size: tuple[int, int], names: Sequence[str] = SAMPLE_PORTRAITS, scale: float = 1.8) -> np.ndarray:
    """Square face crops of the public-domain portraits, ``scale`` x the face box, resized: (N, h, w, 3) uint8."""
    from faceexpr_cli.samples import load_portrait

    crops = []
    for name in names:
        image, portrait = load_portrait(name)
        cx, cy = portrait.face_center
        half = portrait.face_size * scale / 2
        x0, y0 = int(round(cx - half)), int(round(cy - half))
        side = int(round(2 * half))
        pad = max(0, -x0, -y0, x0 + side - image.shape[1], y0 + side - image.shape[0])
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else image
        crop = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side].astype(np.float32)
        crops.append(resize_batch(crop[None], size)[0])
    return np.clip(np.stack(crops) + 0.5, 0, 255).astype(np.uint8)
