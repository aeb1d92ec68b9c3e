"""The three FOMM networks built from the original's ``model_params`` sections, in one container.

The container's sub-modules are named like the top-level keys of an original checkpoint (``kp_detector``,
``generator``, ``discriminator``), so ``load_parts(ckpt)`` is a strict ``load_state_dict`` per part with no renaming.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from faceexpr_cli.nn.fomm.discriminator import MultiScaleDiscriminator
from faceexpr_cli.nn.fomm.generator import OcclusionAwareGenerator
from faceexpr_cli.nn.fomm.keypoint_detector import KPDetector

PARTS = ("kp_detector", "generator", "discriminator")


class FirstOrderModel(nn.Module):
    def __init__(self, common_params: dict[str, Any], kp_detector_params: dict[str, Any],
                 generator_params: dict[str, Any], discriminator_params: dict[str, Any] | None = None,
                 with_discriminator: bool = False):
        super().__init__()
        self.common_params = dict(common_params)
        self.kp_detector = KPDetector(**kp_detector_params, **common_params)
        self.generator = OcclusionAwareGenerator(**generator_params, **common_params)
        if with_discriminator and discriminator_params is not None:
            self.discriminator = MultiScaleDiscriminator(**discriminator_params, **common_params)
        else:
            self.discriminator = None

    @property
    def num_kp(self) -> int:
        return int(self.common_params["num_kp"])

    def parts(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in PARTS if getattr(self, name, None) is not None}

    def load_parts(self, checkpoint: dict[str, Any], strict: bool = True) -> list[str]:
        """Load each part present in an original-layout checkpoint; returns the part names loaded."""
        loaded = []
        for name, module in self.parts().items():
            if name in checkpoint:
                module.load_state_dict(checkpoint[name], strict=strict)
                loaded.append(name)
        return loaded

    def part_state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        return {name: module.state_dict() for name, module in self.parts().items()}

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        """Absolute-motion reconstruction: animate ``source`` with ``driving``'s key points (training's view)."""
        kp_s, jac_s = self.kp_detector(source)
        kp_d, jac_d = self.kp_detector(driving)
        return self.generator(source, kp_d, jac_d, kp_s, jac_s)
