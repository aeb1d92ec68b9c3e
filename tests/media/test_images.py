"""write_image: the pixels come back, nothing is left under a temporary name, a failed write leaves nothing."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.media import read_image, write_image


def test_write_image_roundtrip_and_no_leftovers(tmp_path, monkeypatch):
    img = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    out = write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(out), img)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    from pathlib import Path

    def boom(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "b.png", img)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
