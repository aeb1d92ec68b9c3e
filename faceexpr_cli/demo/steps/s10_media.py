"""Demo: build the sample talking-head video, probe it, cut a span, extract its audio."""

from __future__ import annotations

from faceexpr_cli.demo.framework import DemoContext, demo_step


@demo_step("sample", "Sample talking-head video", order=10)
def sample_video(ctx: DemoContext) -> None:
    from faceexpr_cli.media import probe, read_frames, write_image
    from faceexpr_cli.samples import make_talking_head

    v = ctx.recipe.video
    th = make_talking_head(ctx.path("sample/talking_head.mp4"), portraits=[v.portrait], seconds=v.seconds,
                           fps=v.fps, width=v.width, height=v.height, seed=v.seed)
    info = probe(th.path)
    ctx.state["sample_video"] = th.path
    ctx.state["sample_truth"] = th
    ctx.state["sample_portrait"] = v.portrait
    frames = read_frames(th.path, fps=2.0, max_frames=4)
    import numpy as np

    strip = ctx.path("sample/frames.png")
    write_image(strip, np.concatenate(list(frames), axis=1))
    ctx.video(th.path, f"{info.width}x{info.height}, {info.fps:g} fps, {info.duration:.2f} s, "
                       f"{info.codec}, audio: {'yes' if info.has_audio else 'no'}")
    ctx.image(strip, "frames at 0, 0.5, 1.0 and 1.5 s")
    ctx.table([{k: v for k, v in info.to_dict().items() if k not in ("audio", "path")}], "probe")
    ctx.summary(video=str(th.path), frames=info.frame_count, duration=round(info.duration, 3))


@demo_step("cut", "Cut a span (exact and fast) and extract audio", order=20, needs=("sample_video",))
def cut_span(ctx: DemoContext) -> None:
    from faceexpr_cli.media import cut, extract_audio, probe

    c = ctx.recipe.cut
    src = ctx.state["sample_video"]
    rows = []
    for mode in ("exact", "fast"):
        res = cut(src, ctx.path(f"cut/span_{mode}.mp4"), c.start, c.end, mode=mode)
        info = probe(res.path)
        rows.append({"mode": mode, "requested": f"{c.start:.2f}-{c.end:.2f} s", "starts at": f"{res.actual_start:.3f} s",
                     "snap": f"{res.snap:+.3f} s", "frames": info.frame_count, "audio": info.has_audio})
        ctx.video(res.path, f"{mode} cut")
    wav = extract_audio(src, ctx.path("cut/audio.wav"))
    ctx.table(rows, "cuts")
    ctx.text(f"audio extracted to {wav.name} (16 kHz mono WAV)")
    ctx.summary(cuts=rows)
