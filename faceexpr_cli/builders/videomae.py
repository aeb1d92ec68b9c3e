"""VideoMAE builders and checkpoint loading: original VideoMAE / MAE-style releases and Hugging Face state dicts.

Layouts read without renaming by hand:

- original VideoMAE fine-tuned checkpoints (``patch_embed.proj``, ``blocks.N.attn.qkv``, ``fc_norm``, ``head``),
  optionally under ``model`` / ``module`` / ``state_dict``;
- original pretraining checkpoints (``encoder.`` prefix, decoder keys dropped), and ``backbone.`` prefixes;
- Hugging Face ``VideoMAEModel`` (``embeddings.patch_embeddings.projection``, ``encoder.layer.N.attention...``)
  and ``VideoMAEForVideoClassification`` (``videomae.`` prefix, ``fc_norm``, ``classifier``).

A head whose shape does not fit (another number of classes) is dropped with a warning and keeps its fresh
weights: that is how a fine-tuning run starts from a pretrained or differently labelled model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from faceexpr_cli.builders import BUILDERS
from faceexpr_cli.console import log
from faceexpr_cli.errors import CheckpointError

_HF_QKV = {"attention.attention.query": 0, "attention.attention.key": 1, "attention.attention.value": 2,
           "attention.q_proj": 0, "attention.k_proj": 1, "attention.v_proj": 2}
_HF_RENAMES = [
    ("embeddings.patch_embeddings.projection.", "patch_embed.proj."),
    ("layernorm_before.", "norm1."), ("layernorm_after.", "norm2."),
    ("attention.output.dense.", "attn.proj."), ("attention.o_proj.", "attn.proj."),
    ("attention.attention.q_bias", "attn.q_bias"), ("attention.attention.v_bias", "attn.v_bias"),
    ("attention.q_bias", "attn.q_bias"), ("attention.v_bias", "attn.v_bias"),
    ("intermediate.dense.", "mlp.fc1."), ("output.dense.", "mlp.fc2."),
]
_HEADS = ("head.weight", "head.bias")
_POOL = ("fc_norm.weight", "fc_norm.bias")  # absent from encoder-only checkpoints (pretraining, VideoMAEModel)


@BUILDERS.register("videomae")
def build_videomae(**kwargs: Any):
    from faceexpr_cli.nn.videomae import VideoMAE

    kwargs.pop("labels", None)
    kwargs.pop("sampling", None)
    return VideoMAE(**kwargs)


def unwrap(state: Any) -> dict:
    for wrapper in ("model", "module", "state_dict"):
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise CheckpointError(f"holds a {type(state).__name__}, not a state dict")
    return state


def detect_layout(state: dict) -> str:
    keys = list(state)
    if any("embeddings.patch_embeddings" in k or ".layer." in k and "attention" in k for k in keys):
        return "transformers"
    return "videomae"


def _strip_prefixes(key: str) -> str:
    for prefix in ("module.", "model.", "backbone.", "encoder.", "videomae."):
        if key.startswith(prefix) and not key.startswith("encoder.layer."):
            key = key[len(prefix):]
    return key


def convert_state_dict(state: dict) -> dict:
    """Any supported layout -> this package's ``VideoMAE`` names (decoder / mask token keys are left out)."""
    import torch

    state = unwrap(state)
    if detect_layout(state) == "videomae":
        out = {}
        for k, v in state.items():
            k = _strip_prefixes(k)
            if k.startswith(("decoder", "encoder_to_decoder", "mask_token", "pos_embed", "head_appearance",
                             "head_motion")):
                continue  # pos_embed: the fixed sinusoid, rebuilt at init
            out[k] = v
        return out
    out, qkv = {}, {}
    for k, v in state.items():
        k = k[len("videomae."):] if k.startswith("videomae.") else k
        if k.startswith("classifier."):
            out["head." + k.split(".", 1)[1]] = v
            continue
        if k.startswith(("fc_norm.", "layernorm.")):
            out[k.replace("layernorm.", "norm.")] = v
            continue
        m = re.match(r"encoder\.layer\.(\d+)\.(.*)", k)
        if m:
            layer, rest = int(m.group(1)), m.group(2)
            hit = next(((name, i) for name, i in _HF_QKV.items() if rest.startswith(name + ".weight")), None)
            if hit:
                qkv.setdefault(layer, {})[hit[1]] = v
                continue
            bias = re.match(r"attention\.(?:attention\.(query|key|value)|([qkv])_proj)\.bias$", rest)
            if bias:
                which = (bias.group(1) or bias.group(2))[0]
                if which != "k":  # the key bias is zero by construction (and absent from the releases)
                    out[f"blocks.{layer}.attn.{which}_bias"] = v
                continue
            for old, new in _HF_RENAMES:
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    break
            out[f"blocks.{layer}.{rest}"] = v
            continue
        for old, new in _HF_RENAMES[:1]:
            if k.startswith(old):
                out[new + k[len(old):]] = v
    for layer, parts in qkv.items():
        if sorted(parts) != [0, 1, 2]:
            raise CheckpointError(f"layer {layer}: query/key/value weights incomplete")
        out[f"blocks.{layer}.attn.qkv.weight"] = torch.cat([parts[0], parts[1], parts[2]], 0)
    return out


def read_checkpoint(path: str | Path) -> dict:
    from faceexpr_cli.builders.expression import read_state_dict

    try:
        return unwrap(read_state_dict(path))
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc.message}") from None


def load_videomae_weights(model, source: str | Path | dict, *, drop_head_on_mismatch: bool = True,
                          strict_encoder: bool = True) -> dict[str, Any]:
    """Load a checkpoint (path or state dict) of any supported layout into a ``VideoMAE``.

    Returns what happened: the layout, whether the head was loaded, and the keys left at their init."""
    raw = read_checkpoint(source) if not isinstance(source, dict) else unwrap(source)
    name = str(source) if not isinstance(source, dict) else "state dict"
    layout = detect_layout(raw)
    state = convert_state_dict(raw)
    own = model.state_dict()
    head_loaded = all(k in state for k in _HEADS if k in own)
    dropped = []
    for k in _HEADS:
        if k in state and (k not in own or state[k].shape != own[k].shape):
            if not drop_head_on_mismatch:
                raise CheckpointError(f"{name}: head {k} {tuple(state[k].shape)} does not fit "
                                      f"{tuple(own[k].shape) if k in own else 'no head'}")
            dropped.append(state.pop(k))
            head_loaded = False
    if dropped:
        log.warning("%s: the classifier head does not fit this model (other classes); it starts fresh", name)
    missing = sorted(k for k in set(own) - set(state) if k not in _HEADS + _POOL)
    extra = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and state[k].shape != own[k].shape]
    if strict_encoder and (missing or extra or shapes):
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra
                  else f"shape {shapes[0]}")
        raise CheckpointError(f"{name}: {layout} VideoMAE checkpoint does not fit this model ({detail})",
                              "check the card: ViT-B is dim 768 depth 12 heads 12, patch 16, tubelet 2")
    model.load_state_dict(state, strict=False)
    return {"layout": layout, "head_loaded": head_loaded, "fresh": [k for k in _HEADS + _POOL if k in own and k not in state]}


@BUILDERS.register("videomae-pretrainer")
def build_videomae_pretrainer(decoder_dim: int = 384, decoder_depth: int = 4, decoder_heads: int = 6, **kwargs: Any):
    """VideoMAE encoder (no head) + the appearance/motion decoder of ``nn/videomae_mae.py``."""
    from faceexpr_cli.nn.videomae import VideoMAE
    from faceexpr_cli.nn.videomae_mae import VideoMAEPretrainer

    kwargs.pop("labels", None)
    kwargs["num_classes"] = 0
    return VideoMAEPretrainer(VideoMAE(**kwargs), decoder_dim, decoder_depth, decoder_heads)
