"""`fx extract-feats`: expression tokens per face trajectory for every video (see docs/extract.md)."""

from faceexpr_cli.extract.model import ExpressionModel
from faceexpr_cli.extract.options import ExtractOptions
from faceexpr_cli.extract.records import read_features, read_index, read_tokens
from faceexpr_cli.extract.run import ExtractResult, extract_features

__all__ = ["ExpressionModel", "ExtractOptions", "ExtractResult", "extract_features", "read_features", "read_index",
           "read_tokens"]
