"""Demo: give the sample video a word-timed transcript (from its mouth movement), cut keyword clips into a
dataset, and stream them back with the training reader."""

from __future__ import annotations

import numpy as np

from faceexpr_cli.demo.framework import DemoContext, demo_step

SCRIPT = ["hello", "there", "please", "smile", "now", "look", "surprised", "and", "then", "smile", "again",
          "thanks", "relax", "your", "face", "look", "surprised", "once", "more"]


def words_from_mouth(mouth_open: np.ndarray, fps: float, threshold: float = 0.05) -> list[tuple[str, float, float]]:
    """One word per syllable: runs of open mouth split at the opening's local minima, named from ``SCRIPT``."""
    spans: list[tuple[int, int]] = []
    start = None
    for i, v in enumerate([*mouth_open.tolist(), 0.0]):
        is_min = start is not None and 0 < i < len(mouth_open) - 1 and \
            mouth_open[i] < mouth_open[i - 1] and mouth_open[i] <= mouth_open[i + 1]
        if v > threshold and start is None:
            start = i
        elif start is not None and (v <= threshold or is_min):
            spans.append((start, i))
            start = i if v > threshold else None
    return [(SCRIPT[k % len(SCRIPT)], a / fps, b / fps) for k, (a, b) in enumerate(spans)]


@demo_step("clip", "Keyword clips from a word-timed transcript", order=40, needs=("sample_video", "sample_truth"))
def clip_keywords(ctx: DemoContext) -> None:
    import tarfile

    from faceexpr_cli.clip.inputs import resolve_inputs
    from faceexpr_cli.clip.pipeline import ClipSettings, run_clip
    from faceexpr_cli.clip.stats import summary_line
    from faceexpr_cli.clip.windows import WindowSpec
    from faceexpr_cli.dataset import ClipDataset
    from faceexpr_cli.media import write_image
    from faceexpr_cli.transcripts.vtt_writer import write_youtube_vtt

    video, truth = ctx.state["sample_video"], ctx.state["sample_truth"]
    words = words_from_mouth(truth.mouth_open, truth.fps)
    vtt = write_youtube_vtt(ctx.path("clip/talking_head.en.vtt"), words, words_per_line=4)
    ctx.text(f"transcript: {len(words)} words, one per syllable of the mouth curve, written as a YouTube-style "
             f"auto-caption VTT ({vtt.name}): " + " ".join(w for w, _, _ in words))
    settings = ClipSettings(keywords=["smile", "look surprised"], window=WindowSpec(pre=0.1, post=0.8))
    out = ctx.path("clip/dataset")
    run = run_clip(resolve_inputs([video], transcript=vtt), out, settings, overwrite=True)
    ctx.text(summary_line(run.stats, out.name))
    samples = list(ClipDataset(out, size=(160, 128)))
    if not samples:
        raise RuntimeError("no clips were cut from the sample video")
    rows = [{"key": s["key"], "keywords": " + ".join(s["meta"]["keywords"]), "word at": f"{s['meta']['hits'][0]['start']:.2f} s",
             "clip": f"{s['meta']['window'][0]:.2f}-{s['meta']['window'][1]:.2f} s", "frames": s["length"],
             "audio": f"{s['audio'].shape[1] / s['sample_rate']:.2f} s"} for s in samples]
    ctx.table(rows, "clips, streamed back through faceexpr_cli.dataset.ClipDataset")
    strip = np.concatenate([s["frames"][0].numpy() for s in samples], axis=1)
    ctx.image(write_image(ctx.path("clip/first_frames.png"), strip), "first frame of each clip")
    with tarfile.open(sorted(out.glob("clips-*.tar"))[0]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".mp4"))
        first_clip = ctx.path("clip/first_clip.mp4")
        first_clip.write_bytes(tar.extractfile(member).read())
    ctx.video(first_clip, f"{samples[0]['meta']['keyword']!r} clip with its audio")
    ctx.state["clip_dataset"] = out
    ctx.summary(clips=run.stats["clips"], hits=run.stats["hits_per_keyword"], dataset=str(out))
