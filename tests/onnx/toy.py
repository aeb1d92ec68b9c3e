"""Small models and cards made only for these tests, shaped like the expression path.

``toy-tokenizer`` (image -> patch tokens) and ``toy-expression`` (patch tokens + subject id -> one L2-normalised
token) are two cards, as a training run holds them, so the exporter's cross-model feeding is exercised.
``toy-mismatch`` computes something else while being exported, so its parity check must fail; ``toy-offset``'s
graph differs from PyTorch by exactly ten times its part's tolerance.
"""

from __future__ import annotations

import torch
from torch import nn

from faceexpr_cli.builders import BUILDERS

CONTRACT = """\
input:
  size: 32
  layout: NCHW
  color: RGB
  value_range: [0.0, 1.0]
  mean: [0.485, 0.456, 0.406]
  std: [0.229, 0.224, 0.225]
"""

CARDS = {
    "toy-tokenizer": """\
name: toy-tokenizer
builder: fx-test-toy-tokenizer
description: Test-only patch tokenizer.
task: patch-tokens
licence: Apache-2.0
preset: {dim: 32, patch: 8}
tiny: {dim: 16}
""" + CONTRACT + """\
onnx:
  parts:
    - name: tokenizer
      inputs: [{name: image, shape: [batch, 3, height, width]}]
      outputs: [{name: patch_tokens, shape: [batch, tokens, dim]}]
""",
    "toy-expression": """\
name: toy-expression
builder: fx-test-toy-expression
description: Test-only expression head (a query cross-attends to subject + patch tokens).
task: expression-tokens
licence: Apache-2.0
preset: {dim: 32, layers: 2, subjects: 5}
tiny: {dim: 16, layers: 1}
onnx:
  parts:
    - name: expression
      inputs:
        - {name: patch_tokens, shape: [batch, tokens, dim]}
        - {name: subject, shape: [batch], dtype: int64}
      outputs: [{name: token, shape: [batch, dim]}]
      atol: 1.0e-5
      rtol: 1.0e-4
""",
    "toy-mismatch": """\
name: toy-mismatch
builder: fx-test-toy-mismatch
description: Test-only model whose exported graph adds one.
task: test
licence: Apache-2.0
preset: {dim: 64}
tiny: {dim: 32}
onnx:
  parts:
    - name: body
      inputs: [{name: x, shape: [batch, dim]}]
      outputs: [{name: y, shape: [batch, dim]}]
""",
    "toy-offset": """\
name: toy-offset
builder: fx-test-toy-offset
description: Test-only model whose exported graph adds `offset` (10x the part's atol, rtol 0).
task: test
licence: Apache-2.0
preset: {dim: 8, offset: 1.0e-2}
onnx:
  parts:
    - name: body
      inputs: [{name: x, shape: [batch, dim]}]
      outputs: [{name: y, shape: [batch, dim]}]
      atol: 1.0e-3
      rtol: 0.0
""",
}


class Tokenizer(nn.Module):
    def __init__(self, dim: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(image).flatten(2).transpose(1, 2))


class ExpressionHead(nn.Module):
    def __init__(self, dim: int, layers: int, subjects: int):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.1)
        self.subjects = nn.Embedding(subjects, dim)
        layer = nn.TransformerDecoderLayer(dim, 4, dim * 2, dropout=0.0, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)

    def forward(self, patch_tokens: torch.Tensor, subject: torch.Tensor) -> dict[str, torch.Tensor]:
        memory = torch.cat([self.subjects(subject)[:, None], patch_tokens], dim=1)
        q = self.query.expand(patch_tokens.shape[0], -1, -1)
        return {"token": nn.functional.normalize(self.decoder(q, memory)[:, 0], dim=-1)}


class Mismatch(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.lin = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        return y + 1.0 if torch.compiler.is_exporting() else y


class Offset(nn.Module):
    """Eager: ``lin(x)``; exported: ``lin(x) + offset``, so the graph differs from PyTorch by exactly ``offset``."""

    def __init__(self, dim: int, offset: float):
        super().__init__()
        self.lin = nn.Linear(dim, dim)
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        return y + self.offset if torch.compiler.is_exporting() else y


BUILDER_TABLE = {"fx-test-toy-tokenizer": Tokenizer, "fx-test-toy-expression": ExpressionHead,
                 "fx-test-toy-mismatch": Mismatch, "fx-test-toy-offset": Offset}


def register() -> None:
    for name, cls in BUILDER_TABLE.items():
        if name not in BUILDERS:
            BUILDERS.add(name, cls)
