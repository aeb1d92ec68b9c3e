"""Demo: swap another person's identity into the sample talking head (landmarks engine), and measure it."""

from __future__ import annotations

from faceexpr_cli.demo.framework import DemoContext, demo_step


@demo_step("swap", "Identity swap (landmarks engine) and its eval", order=75, needs=("sample_video",))
def swap_identity(ctx: DemoContext) -> None:
    from faceexpr_cli.media import write_image
    from faceexpr_cli.samples import load_portrait
    from faceexpr_cli.swap.evaluate import evaluate
    from faceexpr_cli.swap.pipeline import swap

    driver = ctx.state.get("sample_portrait")
    name = "astronaut" if driver not in (None, "astronaut") else "grace_hopper"  # never the driver's own face
    source = write_image(ctx.path(f"swap/{name}.png"), load_portrait(name)[0])
    result = swap(source, ctx.state["sample_video"], ctx.path("swap/result.mp4"))
    summary = evaluate(result.out, source, ctx.state["sample_video"], ctx.path("swap/eval"), every=5, emotion=False)
    ident, expr = summary["identity"], summary["expression"]
    ctx.video(result.out, f"{name}'s identity on the sample video: {result.frames} frames, {result.ms_per_frame} "
                          f"ms/frame, {'driving audio copied' if result.audio else 'no audio'}")
    ctx.image(summary["plot"], "fx swap eval: identity distances, mouth opening, expression and pose error")

    def f(v):
        return "" if v is None else round(v, 3)

    ctx.table([{"retrieval rate": f(ident["retrieval_rate"]), "to source": f(ident["dist_source"]),
                "to driver": f(ident["dist_driver"]), "mouth r (interior)": f(expr["mouth_interior_correlation"]),
                "expression error": f(expr["error"]), "pose error (deg)": f(summary["pose_error_deg"]),
                "jitter": f(summary["jitter"])}], "fx swap eval (every 5th frame)")
    ctx.text("fx swap -s face.jpg -d talk.mp4 -o result.mp4   then   fx swap eval result.mp4 -s face.jpg "
             "-d talk.mp4 --out eval/")
    ctx.state["swap_result"] = result.out
    ctx.summary(result=result.out, frames=result.frames, retrieval_rate=ident["retrieval_rate"],
                mouth_interior_correlation=expr["mouth_interior_correlation"])
