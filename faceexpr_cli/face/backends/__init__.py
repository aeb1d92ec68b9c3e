"""Face backends; each module registers one class in ``faceexpr_cli.face.backend.BACKENDS``."""
