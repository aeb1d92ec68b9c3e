"""Demo: `fx train joint` with the tiny recipe on sample face clips (two portraits = two subjects), on the CPU."""

from __future__ import annotations

from faceexpr_cli.demo.framework import DemoContext, demo_step


def _loss_plot(path, rows) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for key in ("loss_reconstruction", "loss_temporal", "loss_diversity"):
        ax.plot(steps, [r[key] for r in rows], label=key.removeprefix("loss_"))
    # diversity is clamped at 0 (tokens already orthogonal): symlog keeps those points on the plot
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


@demo_step("train", "Train the expression transformer + reconstruction (tiny recipe, CPU)", order=50)
def train_joint(ctx: DemoContext) -> None:
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.train.data import make_sample_clips
    from faceexpr_cli.train.runner import run

    clips = make_sample_clips(ctx.path("train/clips/.keep").parent, seconds=2.0, size=56)
    recipe = load_recipe("joint-tiny", [f"data.path={clips}", "trainer.max_steps=300", "trainer.log_every=10",
                                        "trainer.save_every=300"])
    run_dir = ctx.path("train/run/.keep").parent
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    result = run(recipe, run_dir)
    rows = result.rows
    _loss_plot(ctx.path("train/losses.png"), rows)
    ev = result.evals[-1]
    first, last = rows[0], rows[-1]
    ctx.state["train_run"] = run_dir
    ctx.text(f"{result.steps} steps of `fx train joint --recipe joint-tiny` on 4 sample clips (2 subjects, 56 px), "
             f"random-init tiny tokenizer. Reconstruction loss {first['loss_reconstruction']:.4f} -> "
             f"{last['loss_reconstruction']:.4f}.")
    ctx.image(ctx.path("train/losses.png"), "losses per step (log scale)")
    ctx.video(ev["video"], "evaluation clip: original | reconstruction, with the clip's audio")
    ctx.image(ev["plot"], "expression-token trajectory over the clip (PCA)")
    ctx.table([{"scalar": k, "first": round(first[k], 5), "last": round(last[k], 5)}
               for k in ("loss", "loss_reconstruction", "loss_temporal", "loss_diversity", "lr", "frames_per_s")],
              "training scalars")
    ctx.summary(steps=result.steps, checkpoint=str(result.checkpoint),
                reconstruction_first=first["loss_reconstruction"], reconstruction_last=last["loss_reconstruction"],
                eval_mse=ev["mse"])
