"""Evaluation arithmetic (PCA ratios, pixel rounding, MSE, prediction cosine) and what ``evaluate`` hands to the
video and plot writers, on hand-written CPU models; the TensorBoard media helpers on small arrays."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from faceexpr_cli.train import evaluate as E
from faceexpr_cli.train import tb_media as T
from faceexpr_cli.train.data import ClipRef, SubjectTable


def test_pca_2d_ratios_and_projections():
    pts = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]]) + 5.0  # the mean is taken out first
    proj, var = E.pca_2d(pts)
    # singular values sqrt(8) and sqrt(2): ratios 8/10 and 2/10
    assert var == pytest.approx([0.8, 0.2])
    assert np.abs(proj[:, 0]) == pytest.approx([2, 2, 0, 0]) and np.abs(proj[:, 1]) == pytest.approx([0, 0, 1, 1])
    still = E.pca_2d(np.ones((3, 4)))[1]
    assert np.all(np.isfinite(still)) and still == pytest.approx([0.0, 0.0])  # no variance: 0, not NaN
    assert E.pca_2d(np.random.default_rng(0).normal(size=(6, 5)))[0].shape == (6, 2)


def test_to_uint8_rounds_and_clamps():
    img = torch.tensor([[[[0.0, 0.5]], [[1.0, 2.0]], [[-1.0, 0.4 / 255]]]])  # (1, 3, 1, 2)
    out = E.to_uint8(img)
    assert out.shape == (1, 1, 2, 3) and out.dtype == np.uint8
    # channel last; 0.5 -> 127.5 rounds to 128; 2 -> clamped 255; -1 -> 0; 0.4 / 255 -> 0.4 rounds to 0
    assert out[0, 0].tolist() == [[0, 255, 0], [128, 255, 0]]


class Tok(torch.nn.Module):
    def forward(self, x):  # (B, 3, H, W) -> one token per image: its channel means
        return (x.mean(dim=(2, 3))[:, None, :],)


class Expr(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.calls: list[tuple[int, list[int]]] = []

    def forward(self, tokens, pos, rows):
        self.calls.append((len(tokens), rows.tolist()))
        return tokens[:, 0, :] + rows[:, None].float()


class Recon(torch.nn.Module):
    def forward(self, expr, rows, pos):
        return torch.full((len(expr), 3, 2, 2), 0.5)


class Pred(torch.nn.Module):
    max_len = 3

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[int, ...]] = []

    def forward(self, seq):
        self.seen.append(tuple(seq.shape))
        return seq * 2


def frames(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8) * 20


@pytest.fixture
def writers(monkeypatch):
    got: dict[str, tuple] = {}

    def video(path, original, recon, fps, audio=None, audio_start=0.0):
        got["video"] = (path, original, recon, fps, audio, audio_start)
        return path

    def plot(path, tokens, fps, title, predicted=None):
        got["plot"] = (path, tokens, fps, title, predicted)
        return path

    monkeypatch.setattr(E, "side_by_side_video", video)
    monkeypatch.setattr(E, "token_plot", plot)
    return got


def test_evaluate_joint_models_on_the_first_clip(tmp_path, writers):
    clip = ClipRef("a/c.mp4", tmp_path / "c.mp4", "bob", 5, 25.0, has_audio=True)
    source = SimpleNamespace(clips=[clip], frames=lambda i: {0: frames(5)}[i])  # not streaming: a folder; clip 0
    expr, recon = Expr(), Recon()
    expr.train()
    recon.eval()
    task = SimpleNamespace(models={"expression": expr, "reconstruction": recon})
    subjects = SubjectTable(["amy", "bob"])
    res = E.evaluate(task, Tok(), None, source, None, subjects, tmp_path, 7, torch.device("cpu"), 4, chunk=3)
    assert expr.calls == [(3, [1, 1, 1]), (1, [1])]  # 4 frames (max_frames) in chunks of 3, bob's row
    assert expr.training and not recon.training  # each model back in its own mode
    stem = tmp_path / "eval" / "step_000007"
    assert res["step"] == 7 and res["clip"] == "a/c.mp4" and "prediction_cosine" not in res
    # reconstruction 0.5 -> 128 everywhere; the frames are 0, 20, 40, 60
    assert res["mse"] == pytest.approx(np.mean([((128 - v) / 255) ** 2 for v in (0, 20, 40, 60)]), rel=1e-6)
    path, original, rec, fps, audio, start = writers["video"]
    assert path == stem.with_suffix(".mp4") and res["video"] == path
    assert np.array_equal(original, frames(4)) and rec.shape == (4, 2, 2, 3) and (rec == 128).all()
    assert (fps, audio, start) == (25.0, clip.path, 0.0)
    ppath, tokens, pfps, title, predicted = writers["plot"]
    assert ppath == tmp_path / "eval" / "step_000007_tokens.png" and res["plot"] == ppath
    assert title == "expression tokens, a/c.mp4, step 7" and pfps == 25.0 and predicted is None
    assert tokens == pytest.approx(np.array([[t * 20 / 255 + 1] * 3 for t in range(4)]), rel=1e-6)


def test_evaluate_a_streamed_batch_with_the_predictor(tmp_path, writers):
    clip = ClipRef("k", tmp_path / "s.tar", "amy", 8, 12.5, has_audio=False)
    batch = SimpleNamespace(clips=[clip], frames=[frames(5)], starts=[10])
    source = SimpleNamespace(streaming=True)
    pred = Pred()
    task = SimpleNamespace(models={"expression": Expr(), "predictor": pred})
    res = E.evaluate(task, Tok(), None, source, batch, SubjectTable(["amy"]), tmp_path, 2, torch.device("cpu"), 4)
    assert "video" not in writers and "mse" not in res  # no reconstruction model
    assert pred.seen == [(1, 3, 3)]  # every frame of the streamed clip, cut to the predictor's max_len
    tokens = np.array([[t * 20 / 255] * 3 for t in range(3)])
    # prediction t = 2 * token t, against token t + 1: mean of 2 * 3 * (t + 1) t (20 / 255)^2 over t = 0, 1
    want = np.mean([(tokens[t + 1] * 2 * tokens[t]).sum() for t in range(2)])
    assert res["prediction_cosine"] == pytest.approx(want, rel=1e-5)
    _, plotted, fps, _, predicted = writers["plot"]
    assert plotted.shape == (3, 3) and fps == 12.5 and predicted == pytest.approx(2 * tokens, rel=1e-5)


def test_evaluate_starts_the_audio_at_the_window(tmp_path, writers):
    clip = ClipRef("k", tmp_path / "s.mp4", "amy", 8, 25.0, has_audio=True)
    batch = SimpleNamespace(clips=[clip], frames=[frames(2)], starts=[10])
    task = SimpleNamespace(models={"expression": Expr(), "reconstruction": Recon()})
    E.evaluate(task, Tok(), None, SimpleNamespace(streaming=True), batch, SubjectTable(["amy"]), tmp_path, 1,
               torch.device("cpu"), 60)
    assert writers["video"][4:] == (clip.path, pytest.approx(10 / 25.0))


def test_shrink_only_large_frames():
    small = np.zeros((2, 384, 200, 3), np.uint8)
    assert T._shrink(small) is small
    big = np.zeros((2, 400, 768, 3), np.uint8)
    assert T._shrink(big).shape == (2, 200, 384, 3)  # long side 768 -> 384: half
    assert T._shrink(np.zeros((1, 385, 10, 3), np.uint8)).shape == (1, 384, 10, 3)


def _gif(summary):
    from PIL import Image

    (value,) = summary.value
    return value, Image.open(io.BytesIO(value.image.encoded_image_string))


def test_gif_summary_frames_size_and_timing():
    frames_ = np.stack([np.full((8, 6, 3), 2 * i, np.uint8) for i in range(100)])
    value, gif = _gif(T.gif_summary("eval/video", frames_, 25.0))
    assert value.tag == "eval/video" and (value.image.height, value.image.width, value.image.colorspace) == (8, 6, 3)
    assert gif.n_frames == 96 and gif.info["duration"] == 40  # at most 96 frames, 1000 / 25 ms each
    assert gif.info["loop"] == 0
    _, fast = _gif(T.gif_summary("t", frames_[:3], 100.0))
    assert fast.info["duration"] == 20  # 10 ms is below the 20 ms floor
    _, slow = _gif(T.gif_summary("t", frames_[:3], 2.0))
    assert slow.info["duration"] == 500
    value, _ = _gif(T.gif_summary("t", np.zeros((2, 800, 400, 3), np.uint8), 25.0))
    assert (value.image.height, value.image.width) == (384, 192)


class FakeWriter:
    def __init__(self):
        self.images, self.summaries, self.flushed = [], [], 0

    def add_image(self, tag, picture, step, dataformats):
        self.images.append((tag, picture.shape, step, dataformats))

    def _get_file_writer(self):
        return SimpleNamespace(add_summary=lambda s, step: self.summaries.append((s, step)))

    def flush(self):
        self.flushed += 1


def test_log_eval_writes_the_plot_and_the_video(tmp_path, clip_folder):
    from PIL import Image

    plot = tmp_path / "p.png"
    Image.fromarray(np.zeros((5, 7, 4), np.uint8)).save(plot)
    tb = FakeWriter()
    T.log_eval(tb, 3, {"plot": plot, "video": clip_folder / "astronaut" / "clip_00.mp4"})
    assert tb.images == [("eval/tokens", (5, 7, 3), 3, "HWC")]  # RGBA read as RGB
    ((summary, step),) = tb.summaries
    value, gif = _gif(summary)
    assert step == 3 and value.tag == "eval/video" and gif.n_frames == 30 and gif.info["duration"] == 40
    assert tb.flushed == 1
    empty = FakeWriter()
    T.log_eval(empty, 1, {"plot": tmp_path / "none.png", "video": None})
    assert empty.images == [] and empty.summaries == [] and empty.flushed == 1


def test_side_by_side_video_puts_the_reconstruction_right_of_the_original(tmp_path, monkeypatch):
    import faceexpr_cli.media as media

    calls = []
    monkeypatch.setattr(media, "write_video", lambda path, frames, fps, **kw: calls.append((path, frames, fps, kw))
                        or path)
    original, recon = frames(5), 255 - frames(5)
    out = E.side_by_side_video(tmp_path / "v.mp4", original, recon, 25.0, tmp_path / "a.mp4", 1.5)
    ((path, written, fps, kw),) = calls
    assert out == path == tmp_path / "v.mp4" and fps == 25.0 and isinstance(written, list) and len(written) == 5
    assert written[3].shape == (2, 4, 3)
    assert np.array_equal(written[3][:, :2], original[3]) and np.array_equal(written[3][:, 2:], recon[3])
    assert kw == {"audio": tmp_path / "a.mp4", "audio_start": 1.5, "audio_duration": pytest.approx(5 / 25.0)}
    E.side_by_side_video(tmp_path / "w.mp4", original, recon, 10.0)
    assert calls[1][3] == {"audio": None, "audio_start": 0.0, "audio_duration": pytest.approx(0.5)}


def test_token_plot_writes_one_png_of_the_figure_size(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    path = tmp_path / "eval" / "p.png"
    assert E.token_plot(path, rng.normal(size=(8, 4)), 25.0, "t", rng.normal(size=(8, 4))) == path
    assert Image.open(path).size == (800, 320)  # 10 x 4 inches at 80 dpi
    assert sorted(p.name for p in path.parent.iterdir()) == ["p.png"]  # the temporary file is renamed
    two = E.token_plot(tmp_path / "two.png", rng.normal(size=(2, 3)), 12.5, "two frames")  # the fewest there are
    assert Image.open(two).size == (800, 320)


def test_large_gif_frames_shrink_with_a_bilinear_filter():
    from PIL import Image

    rng = np.random.default_rng(5)
    big = rng.integers(0, 256, size=(2, 800, 400, 3), dtype=np.uint8)
    small = T._shrink(big)
    want = [np.asarray(Image.fromarray(f).resize((192, 384), Image.BILINEAR)) for f in big]
    assert small.shape == (2, 384, 192, 3) and np.array_equal(small, np.stack(want))
    assert not np.array_equal(small[0], np.asarray(Image.fromarray(big[0]).resize((192, 384), Image.BICUBIC)))
    little = big[:, :300, :200]
    assert T._shrink(little) is little  # within the limit: untouched
