"""`fx train emotion-adding` and its inference: neutral expression sequences -> emotional ones (seed 003's fork).

Training pairs are two folders of expression sequences (``<name>.npz`` holding ``expression`` (T, K), as
`fx audio2expr betas` writes them) paired by file name: the neutral take and the emotional take of the same
sentence. Takes differ in length, so the emotional one is resampled linearly in time onto the neutral one's frames.
A step draws windows of ``data.frames`` frames; the loss is the MSE between the model's output and the emotional
take. At inference, ``apply`` blends: ``neutral + alpha * added`` (``ortho``: the added part orthogonal to the
neutral expression), so ``alpha = 0`` gives back the input exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from faceexpr_cli.console import log
from faceexpr_cli.errors import CheckpointError, ConfigError, DataError, MissingFileError
from faceexpr_cli.runlock import ensure_out_dir, output_lock
from faceexpr_cli.train import checkpoint as C

ROLE = "emotion"
BUILDERS = ("emotion_adding_linear", "emotion_adding_transformer")


def read_betas(folder: str | Path) -> dict[str, np.ndarray]:
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(folder, "expression folder")
    out = {}
    for path in sorted(folder.glob("*.npz")):
        try:
            with np.load(path) as z:
                out[path.stem] = np.asarray(z["expression"], np.float32)
        except (OSError, KeyError, ValueError) as exc:
            log.warning("%s: left out (not an expression file: %s)", path.name, exc)
    if not out:
        raise DataError(f"{folder}: no expression files (*.npz with 'expression')", "write them with fx audio2expr betas")
    return out


def resample(seq: np.ndarray, n: int) -> np.ndarray:
    """(T, K) -> (n, K), linear in time."""
    src = np.linspace(0, 1, len(seq))
    dst = np.linspace(0, 1, n)
    return np.stack([np.interp(dst, src, seq[:, k]) for k in range(seq.shape[1])], 1).astype(np.float32)


def pairs(source_dir: str | Path, target_dir: str | Path, min_frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    src, tgt = read_betas(source_dir), read_betas(target_dir)
    common = sorted(set(src) & set(tgt))
    if not common:
        raise DataError(f"{source_dir} and {target_dir} share no file name", "name each emotional take like its "
                                                                              "neutral one")
    dims = {v.shape[1] for v in (*src.values(), *tgt.values())}
    if len(dims) != 1:
        raise DataError(f"expression files of different widths {sorted(dims)}", "extract both with the same run")
    out = [(src[k], resample(tgt[k], len(src[k]))) for k in common if len(src[k]) >= min_frames]
    if not out:
        raise DataError(f"no pair has {min_frames} frames", "lower data.frames")
    return out


def train_emotion(recipe, run_dir: str | Path) -> dict:
    from faceexpr_cli.config.recipes import dump_recipe
    from faceexpr_cli.devices import check_device
    from faceexpr_cli.train.monitor import Monitor
    from faceexpr_cli.train.tasks import build, model_args

    run_dir = ensure_out_dir(run_dir, "--out")
    d = recipe.data
    if not d.source_betas or not d.target_betas:
        raise ConfigError("emotion adding needs --source-betas and --target-betas (data.source_betas/target_betas)")
    device = torch.device(check_device(recipe.device, "--device"))
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    with output_lock(run_dir, "fx train emotion-adding", "--out"):
        data = pairs(d.source_betas, d.target_betas, d.frames)
        card, args = model_args(recipe.model, {"expression_dim": int(data[0][0].shape[1])})
        if card.builder not in BUILDERS:
            raise ConfigError(f"model.card {card.name} is not an emotion-adding card",
                              "use emotion-adding-linear or emotion-adding-transformer")
        args["expression_dim"] = int(data[0][0].shape[1])
        torch.manual_seed(recipe.seed)
        model = build(card, args).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr)
        text = dump_recipe(recipe)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.yaml").write_text(text)
        monitor = Monitor(run_dir, True, recipe.tensorboard, recipe.max_steps, 0)
        value = float("nan")
        try:
            for k in range(recipe.max_steps):
                rng = np.random.default_rng(np.random.SeedSequence([recipe.seed, k]))
                xs, ys = [], []
                for i in rng.integers(0, len(data), d.batch_clips):
                    x, y = data[int(i)]
                    s = int(rng.integers(0, len(x) - d.frames + 1))
                    xs.append(x[s:s + d.frames])
                    ys.append(y[s:s + d.frames])
                x = torch.from_numpy(np.stack(xs)).to(device)
                y = torch.from_numpy(np.stack(ys)).to(device)
                loss = torch.nn.functional.mse_loss(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                value = float(loss.detach())
                if (k + 1) % recipe.log_every == 0 or k in (0, recipe.max_steps - 1):
                    monitor.log(k + 1, {"loss": value})
                else:
                    monitor.advance(k + 1)
        finally:
            monitor.close()
        state = {"optimizer": opt.state_dict(), "schedule": {}, "step": recipe.max_steps}
        ckpt = C.save_checkpoint(run_dir, recipe.max_steps, {ROLE: (model.cpu(), C.resolved_card(card, args))},
                                 state, text, '{"subjects": []}', 3, {"kind": recipe.kind, "loss": value})
    rows = monitor.rows
    return {"run": str(run_dir), "steps": recipe.max_steps, "checkpoint": str(ckpt), "pairs": len(data),
            "first": rows[0] if rows else {}, "last": rows[-1] if rows else {}}


class EmotionModel:
    def __init__(self, model):
        self.model = model.eval()

    @property
    def dim(self) -> int:
        return self.model.expression_dim

    @classmethod
    def load(cls, run: str | Path) -> EmotionModel:
        from faceexpr_cli.builders import build_model

        file = C.resolve_model_file(run, ROLE)
        _, card, _ = C.read_model_file(file)
        if card is None or card.builder not in BUILDERS:
            raise CheckpointError(f"{file} is not an emotion-adding model", "pass a run of `fx train emotion-adding`")
        model = build_model(card)
        C.load_model(file, model, card, ROLE)
        return cls(model)

    def apply(self, expression: np.ndarray, alpha: float, ortho: bool) -> np.ndarray:
        from faceexpr_cli.nn.emotion_adding import blend

        x = torch.from_numpy(np.asarray(expression, np.float32))[None]
        with torch.inference_mode():
            out = blend(x, self.model(x), float(alpha), bool(ortho))
        return out[0].numpy()
