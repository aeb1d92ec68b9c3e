"""FOMM training objectives: pyramid perceptual loss, equivariance, optional LSGAN with feature matching.

``GeneratorLoss`` and ``DiscriminatorLoss`` are modules (so DDP can wrap them) that take a batch and return a dict
of weighted loss terms, as the original's full models do; their sum is what is optimised.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from faceexpr_cli.animate.training.transform import RandomTPS
from faceexpr_cli.nn.fomm.blocks import AntiAliasInterpolation2d, inverse2x2
from faceexpr_cli.nn.fomm.discriminator import scale_key


def _pkey(scale: float) -> str:
    return f"prediction_{float(scale):g}"


class ImagePyramid(nn.Module):
    """Anti-aliased copies of an image at each scale, keyed ``prediction_<scale>`` ('1', '0.5', ...)."""

    def __init__(self, scales: list[float], channels: int = 3):
        super().__init__()
        self.scales = list(scales)
        self.downs = nn.ModuleDict({scale_key(s): AntiAliasInterpolation2d(channels, s) for s in self.scales})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {_pkey(s): self.downs[scale_key(s)](x) for s in self.scales}


class GeneratorLoss(nn.Module):
    def __init__(self, model, vgg: nn.Module | None, train: Any):
        super().__init__()
        self.kp_detector = model.kp_detector
        self.generator = model.generator
        # Held, not registered: the discriminator is trained by DiscriminatorLoss, so it must stay out of this
        # module's parameters (and out of its DDP reducer); here it only passes gradients to the prediction.
        self._disc = (model.discriminator,)
        self.vgg = vgg
        self.train_cfg = train
        self.weights = train.loss_weights
        self.scales = list(train.scales)
        self.pyramid = ImagePyramid(self.scales, model.generator.num_channels)

    @property
    def discriminator(self):
        return self._disc[0]

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict]:
        w = self.weights
        kp_s, jac_s = self.kp_detector(source)
        kp_d, jac_d = self.kp_detector(driving)
        generated = self.generator.forward_all(source, kp_d, jac_d, kp_s, jac_s)
        generated.update({"kp_source": kp_s, "kp_driving": kp_d})
        losses: dict[str, torch.Tensor] = {}
        real = self.pyramid(driving)
        fake = self.pyramid(generated["prediction"])

        if self.vgg is not None and sum(w.perceptual):
            total = source.new_zeros(())
            for scale in self.scales:
                fx, fy = self.vgg(fake[_pkey(scale)]), self.vgg(real[_pkey(scale)])
                for i, weight in enumerate(w.perceptual):
                    total = total + weight * (fx[i] - fy[i].detach()).abs().mean()
            losses["perceptual"] = total

        if w.generator_gan and self.discriminator is not None:
            kp = kp_d.detach()
            maps_fake = self.discriminator(fake, kp=kp)
            maps_real = self.discriminator(real, kp=kp)
            total = source.new_zeros(())
            for scale in self.discriminator.scales:
                total = total + w.generator_gan * ((1 - maps_fake[f"prediction_map_{scale}"]) ** 2).mean()
            losses["gen_gan"] = total
            if sum(w.feature_matching):
                total = source.new_zeros(())
                for scale in self.discriminator.scales:
                    pairs = zip(maps_real[f"feature_maps_{scale}"], maps_fake[f"feature_maps_{scale}"], strict=True)
                    for i, (a, b) in enumerate(pairs):
                        if i < len(w.feature_matching) and w.feature_matching[i]:
                            total = total + w.feature_matching[i] * (a - b).abs().mean()
                losses["feature_matching"] = total

        if w.equivariance_value or w.equivariance_jacobian:
            tp = self.train_cfg.transform_params
            warp = RandomTPS(driving.shape[0], tp.sigma_affine, tp.sigma_tps, tp.points_tps, driving.device)
            kp_t, jac_t = self.kp_detector(warp.transform_frame(driving))
            if w.equivariance_value:
                losses["equivariance_value"] = w.equivariance_value * (kp_d - warp.warp_coordinates(kp_t)).abs().mean()
            if w.equivariance_jacobian:
                composed = torch.matmul(warp.jacobian(kp_t), jac_t)
                value = torch.matmul(inverse2x2(jac_d), composed)
                eye = torch.eye(2, device=value.device, dtype=value.dtype).view(1, 1, 2, 2)
                losses["equivariance_jacobian"] = w.equivariance_jacobian * (eye - value).abs().mean()
        return losses, generated


class DiscriminatorLoss(nn.Module):
    def __init__(self, model, train: Any):
        super().__init__()
        self.discriminator = model.discriminator
        self.weight = train.loss_weights.discriminator_gan
        self.pyramid = ImagePyramid(list(self.discriminator.scales), model.generator.num_channels)

    def forward(self, driving: torch.Tensor, prediction: torch.Tensor, kp_driving: torch.Tensor):
        real = self.pyramid(driving)
        fake = self.pyramid(prediction.detach())
        kp = kp_driving.detach()
        maps_fake = self.discriminator(fake, kp=kp)
        maps_real = self.discriminator(real, kp=kp)
        total = driving.new_zeros(())
        for scale in self.discriminator.scales:
            key = f"prediction_map_{scale}"
            total = total + self.weight * ((1 - maps_real[key]) ** 2 + maps_fake[key] ** 2).mean()
        return {"disc_gan": total}
