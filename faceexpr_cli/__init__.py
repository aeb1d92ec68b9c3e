"""faceexpr: the `fx` command-line suite for facial-expression datasets and models."""

__version__ = "0.1.0"
