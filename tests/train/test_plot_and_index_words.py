"""What the evaluation's token plot draws (checked on the figure's data, not its pixels) and the example the
shard index's unnamed-clips warning gives."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from faceexpr_cli.train import evaluate as E
from faceexpr_cli.train.data import ShardClips


@pytest.fixture
def drawn(monkeypatch):
    """The figures token_plot saves."""
    from matplotlib.figure import Figure

    figs = []
    real = Figure.savefig

    def keep(self, *a, **kw):
        figs.append(self)
        return real(self, *a, **kw)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figs


def test_the_token_plot_draws_the_principal_components_against_time(tmp_path, drawn):
    rng = np.random.default_rng(3)
    n, fps = 20, 12.5
    # a clear first axis (scale 5), a weaker second (scale 1), noise on the rest
    basis = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    coords = np.c_[5 * rng.normal(size=n), rng.normal(size=n), 0.01 * rng.normal(size=(n, 4))]
    tokens = coords @ basis.T
    E.token_plot(tmp_path / "p.png", tokens, fps, "t")
    [fig] = drawn
    ax1, ax2 = fig.axes[:2]
    t = np.arange(n) / fps
    pc1, pc2 = ax2.lines[0], ax2.lines[1]
    np.testing.assert_allclose(pc1.get_xdata(), t)
    np.testing.assert_allclose(pc2.get_xdata(), t)
    assert ax2.get_xlabel() == "time (s)"
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == ["PC1", "PC2"]
    # independent PCA: centred tokens on the leading right singular vectors, up to each axis' sign
    x = tokens - tokens.mean(0)
    vt = np.linalg.svd(x, full_matrices=False)[2]
    for line, k in ((pc1, 0), (pc2, 1)):
        want = x @ vt[k]
        got = np.asarray(line.get_ydata())
        assert np.allclose(got, want, atol=1e-9) or np.allclose(got, -want, atol=1e-9)
    # the trajectory on the left joins (PC1, PC2) of each frame, coloured by time
    [path] = ax1.lines
    np.testing.assert_allclose(path.get_xdata(), pc1.get_ydata())
    np.testing.assert_allclose(path.get_ydata(), pc2.get_ydata())
    [dots] = ax1.collections
    np.testing.assert_allclose(dots.get_offsets(), np.c_[pc1.get_ydata(), pc2.get_ydata()])
    np.testing.assert_allclose(dots.get_array(), t)


def _index(root, rows):
    root.mkdir(parents=True)
    (root / "clips-000000.tar").write_bytes(b"")
    pq.write_table(pa.Table.from_pylist(rows), root / "index.parquet")
    return root


def test_the_unnamed_clips_warning_gives_the_first_as_its_example(tmp_path, fx_log):
    rows = [{"key": k, "status": "ok", "frames": 30, "duration": 1.2, "source": f"/v/{k}.mp4", "speaker": s}
            for k, s in (("a", "ann"), ("b", None), ("c", None))]
    fx_log()
    src = ShardClips(_index(tmp_path / "ds", rows), 56, 10, subject_from="speaker")
    assert src.subject_of == {"a": "ann"}
    assert ("2 clip(s) skipped: data.subject_from=speaker finds no subject in their record (e.g. b)"
            in fx_log())

