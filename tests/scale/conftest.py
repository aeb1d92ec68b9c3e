"""One local Ray cluster (2 CPUs, no dashboard) for the scale tests, started once and stopped after; the tests
of this folder live in one file, so under ``pytest -n 2 --dist loadfile`` one worker owns it."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # scalecheck.py: comparing two runs' outputs by content


# Ray's worker processes take the environment the cluster starts with: the moto server's fake credentials
# (tests/scale's S3 test) are set for the start only, then this process's environment is restored.
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def ray_address():
    import ray

    saved = {k: os.environ.get(k) for k in FAKE_AWS}
    os.environ.update(FAKE_AWS)
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def crop_inputs(tmp_path_factory):
    """Four 2 s, 240x192 talking heads, a note (a skipped row) and a corrupt video (an error row)."""
    from faceexpr_cli.samples import make_talking_head

    d = tmp_path_factory.mktemp("scale_inputs")
    for i in range(4):
        make_talking_head(d / f"v{i}.mp4", seconds=2.0, seed=i, width=240, height=192)
    (d / "notes.txt").write_text("not a video\n")
    (d / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return d
