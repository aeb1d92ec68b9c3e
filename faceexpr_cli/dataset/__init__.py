"""The clip dataset format: tar shards of mp4 + JSON, a Parquet index, stats; its writer and its torch reader.

Reader (for training)::

    from faceexpr_cli.dataset import ClipDataset, collate_clips
    ds = ClipDataset("clips/", num_frames=16, fps=25, size=224, shuffle=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, collate_fn=collate_clips)

See ``reader.ClipDataset`` for the sample dict and ``format`` for the folder layout. Importing this package does
not import torch; ``ClipDataset`` and ``collate_clips`` load it on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClipDataset", "DatasetWriter", "collate_clips", "count_samples", "list_shards", "write_stats"]


def __getattr__(name: str) -> Any:
    if name in ("ClipDataset", "collate_clips", "count_samples"):
        from faceexpr_cli.dataset import reader

        return getattr(reader, name)
    if name in ("DatasetWriter", "write_stats"):
        from faceexpr_cli.dataset import writer

        return getattr(writer, name)
    if name == "list_shards":
        from faceexpr_cli.dataset.sources import list_shards

        return list_shards
    raise AttributeError(name)
