"""Resumable, verified fetching: manifests of files and videos (``fx download``) and model weights.

Layers: ``manifest`` (rows -> Items) -> ``runner`` (threads, skip/resume, status, progress) -> ``fetcher`` (one
item: retries, verification, final rename) -> ``sources`` (http, fsspec, ytdlp: bytes into a ``.part``) ->
``dest`` (local rename or bucket upload). ``weights`` reuses the fetcher for model cards' weight sources.
"""

from faceexpr_cli.download.options import DownloadOptions, VideoOptions
from faceexpr_cli.download.retry import RetryPolicy

__all__ = ["DownloadOptions", "RetryPolicy", "VideoOptions", "download_manifest", "download_weights", "list_weights"]


def __getattr__(name: str):
    # the heavy parts load on first use, so importing the package (e.g. for the options) stays cheap
    if name == "download_manifest":
        from faceexpr_cli.download.runner import download_manifest

        return download_manifest
    if name in ("download_weights", "list_weights"):
        from faceexpr_cli.download import weights

        return getattr(weights, name)
    raise AttributeError(name)
