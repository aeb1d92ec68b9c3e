"""``fx swap``: identity swap in video that keeps the driver's expression, pose, lighting and background.

Layers as in ``fx animate``: ``graph.py`` (the exportable warp/colour/blend ``nn.Module``), ``mesh.py`` (the
geometry beside it: triangles, per-triangle affines, masks), ``engines/`` (a registry: ``landmarks``,
``inswapper``), ``faces.py`` (which faces of the source and the driver), ``pipeline.py`` (decode, follow,
swap, write with the driver's audio) and ``evaluate.py`` (``fx swap eval`` over ``faceexpr_cli.metrics``).
"""
