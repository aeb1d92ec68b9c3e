"""Demo: animate the sample portrait with the sample talking head (landmarks engine: no weights, offline)."""

from __future__ import annotations

from faceexpr_cli.demo.framework import DemoContext, demo_step


@demo_step("animate", "Animate a portrait (landmarks engine)", order=70, needs=("sample_video",))
def animate_portrait(ctx: DemoContext) -> None:
    from faceexpr_cli.animate.pipeline import AnimateOptions, animate
    from faceexpr_cli.media import write_image
    from faceexpr_cli.samples import load_portrait

    name = "grace_hopper" if ctx.state.get("sample_portrait") == "astronaut" else "astronaut"
    image, _ = load_portrait(name)  # another person than the driver, so identity transfer is visible
    source = write_image(ctx.path(f"animate/{name}.png"), image)
    result = animate(source, ctx.state["sample_video"], ctx.path("animate/result.mp4"),
                     AnimateOptions(engine="landmarks", side_by_side=True))
    ctx.video(result.out, f"source | driving | result: {result.frames} frames, {result.ms_per_frame} ms/frame "
                          f"(landmarks engine, {'driving audio copied' if result.audio else 'no audio'})")
    ctx.table([{"engine": result.engine, "frames": result.frames, "size": f"{result.width}x{result.height}",
                "reference frame": result.reference_frame, "seconds": result.seconds}], "fx animate")
    ctx.text("fx animate -s portrait.png -d talk.mp4 -o result.mp4 --side-by-side   (fomm engine: --engine fomm "
             "--checkpoint vox-cpk.pth.tar --crop auto --paste-back)")
    ctx.state["animate_result"] = result.out
    ctx.summary(result=result.out, frames=result.frames, ms_per_frame=result.ms_per_frame)
