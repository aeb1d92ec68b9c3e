"""dfer-tokens: a temporal transformer over per-frame features learns a temporal pattern that no single frame
shows (rising vs falling vs flat), on a CPU in a second or two."""

from __future__ import annotations

import torch

from faceexpr_cli.builders import build_model


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    t = torch.linspace(-1, 1, 8)
    slope = torch.tensor([1.0, -1.0, 0.0])[y]
    level = torch.rand(n, 1, generator=g) * 2 - 1  # the frame values overlap between classes
    x = torch.randn(n, 8, 7, generator=g) * 0.1 + (level + slope[:, None] * t)[..., None]
    return x, y


def test_learns_a_temporal_pattern_and_accepts_shorter_clips():
    torch.manual_seed(0)
    m = build_model("dfer-tokens", tiny=True, num_classes=3, frames=8, dim=32)
    xtr, ytr = _data(256, 0)
    xte, yte = _data(128, 1)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    for _ in range(100):
        idx = torch.randint(0, 256, (32,))
        loss = torch.nn.functional.cross_entropy(m.outputs(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        acc = (m(xte)[0].argmax(1) == yte).float().mean().item()
        short = m(xte[:, :5])
    assert acc >= 0.9, acc
    assert short[1].shape == (128, 3) and torch.allclose(short[1].sum(1), torch.ones(128))


def test_dfer_tokens_on_emotion_logits_trains_only_the_temporal_model(tmp_path):
    from safetensors.torch import load_file

    from faceexpr_cli.cli.app import main
    from faceexpr_cli.dfer.synthetic import make_synthetic

    data = make_synthetic(tmp_path / "sample", train_per_class=1, test_per_class=1)
    run = tmp_path / "run"
    assert main(["-q", "finetune-dfer", "train", "--recipe", "dfer-tokens-emotion", "--train", str(data.train),
                 "--test", str(data.test), "--out", str(run), "model.args.extractor_weights=random",
                 "trainer.max_steps=4", "trainer.save_every=2", "data.batch_clips=4", "trainer.tensorboard=false",
                 "optim.warmup_steps=0"]) == 0
    a = load_file(run / "checkpoints" / "step_000002" / "classifier.safetensors")
    b = load_file(run / "checkpoints" / "step_000004" / "classifier.safetensors")
    frozen = [k for k in a if k.startswith("extractor.")]
    trained = [k for k in a if k.startswith("temporal.")]
    assert frozen and trained
    assert all(torch.equal(a[k], b[k]) for k in frozen)  # BatchNorm statistics included
    assert any(not torch.equal(a[k], b[k]) for k in trained)
