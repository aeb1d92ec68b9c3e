"""Checks on what `fx animate` reads and writes, made before the first frame is decoded.

``--max-pixels`` (as in `fx crop`): a 63-megapixel portrait once took 8.6 GB on its way through the engine. Images
are measured from their header (Pillow reads it without decoding the pixels), videos from the probe; a larger
input is a ``MediaError`` (exit 1, the same as `fx crop`'s refusal). ``--out`` must be a file name whose folders
are folders (exit 2 otherwise).
"""

from __future__ import annotations

from pathlib import Path

from faceexpr_cli.errors import MediaError, UsageError

DEFAULT_MAX_PIXELS = 4096 * 4096
HINT = "raise --max-pixels or downscale it"
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv"}
IMAGE_OUT_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the image's header, or None where Pillow cannot tell (the decoder then decides)."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return int(im.size[0]), int(im.size[1])
    except Image.DecompressionBombError:  # Pillow's own limit (~179 MP): far above any --max-pixels in use
        return 1 << 16, 1 << 16
    except Exception:  # noqa: BLE001 - not an image Pillow knows; read_image gives the one-line error
        return None


def check_pixels(path: str | Path, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise MediaError(path, f"resolution {width}x{height} is above the limit ({max_pixels} pixels)", HINT)


def check_image(path: str | Path, max_pixels: int | None) -> None:
    """Refuse an image above ``max_pixels`` before it is decoded."""
    size = image_size(path) if max_pixels is not None and Path(path).is_file() else None
    if size is not None:
        check_pixels(path, *size, max_pixels)


def check_out(out: Path, driving_is_image: bool) -> None:
    """``--out``: the right kind of file for the driver, not a folder, not under a file; its folder is made."""
    from faceexpr_cli.runlock import ensure_out_dir

    suffix = out.suffix.lower()
    if driving_is_image and suffix not in IMAGE_OUT_SUFFIXES:
        raise UsageError(f"--out {out}: a driving image gives an image", "use --out result.png")
    if not driving_is_image and suffix not in VIDEO_SUFFIXES:
        raise UsageError(f"--out {out}: a driving video gives a video", "use --out result.mp4")
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory", f"give a file name, e.g. {out / ('result' + suffix)}")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"--out {out} lies under the file {parent}", "give a path inside a directory")
    ensure_out_dir(out.parent, "--out")
