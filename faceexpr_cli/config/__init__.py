"""Validated YAML: model cards (``models/``) and recipes (``recipes/``)."""
