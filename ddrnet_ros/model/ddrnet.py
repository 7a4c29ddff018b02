"""DDRNet-23-slim, DDRNet-23 and DDRNet-39 (Deep Dual-resolution Networks, arXiv 2101.06085).

Two branches share a stem: the high-resolution branch forks at 1/8 and stays there, the
low-resolution branch goes down to 1/64 and ends in DAPPM. After each later stage the
branches exchange information (bilateral fusion) using their pre-fusion tensors. The
head predicts logits at 1/8 of the input; callers upsample to the label size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import BN_MOMENTUM, DAPPM, BasicBlock, Bottleneck, SegHead, conv_bn, make_layer, resize

OUTPUT_STRIDE = 8
#: Input sides must be multiples of this (the fusions add 1/8 and 1/16..1/64 maps).
INPUT_MULTIPLE = 8
#: The deepest branch's stride. Any multiple of 8 runs, but the 1/16..1/64 maps of a side that does
#: not divide by 64 are rounded up (stride-2 convolutions) and resized back onto the 1/8 map at every
#: fusion, a fraction of a cell off. Frames whose sides divide by 64 keep the branches aligned, as in
#: training crops: the shipped model scored CamVid val 0.751 at 720x960 and 0.762 with the same image
#: padded to a 768x960 frame.
ALIGNED_MULTIPLE = 64


def round_up(value: int, multiple: int = ALIGNED_MULTIPLE) -> int:
    """``value`` rounded up to a multiple of ``multiple`` (by default the aligned frame side)."""
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class DDRNetConfig:
    """Hyper-parameters of one variant, as in the official ``get_seg_model`` constructors."""

    name: str
    layers: tuple[int, ...]  # blocks in layer1, layer2, stage 3 (split in halves for 39), layer4
    planes: int              # c: low-branch base width; the high branch is 2c wide
    head_planes: int
    spp_planes: int = 128
    split_stage3: bool = False  # DDRNet-39 fuses twice inside stage 3


VARIANTS: dict[str, DDRNetConfig] = {
    "ddrnet23_slim": DDRNetConfig("ddrnet23_slim", (2, 2, 2, 2), planes=32, head_planes=64),
    "ddrnet23": DDRNetConfig("ddrnet23", (2, 2, 2, 2), planes=64, head_planes=128),
    "ddrnet39": DDRNetConfig("ddrnet39", (3, 4, 6, 3), planes=64, head_planes=256, split_stage3=True),
}


class DDRNet(nn.Module):
    """A DDRNet whose state_dict keys and shapes equal the official checkpoints'."""

    def __init__(self, config: DDRNetConfig, num_classes: int = 19, aux: bool = False) -> None:
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        self.aux = aux
        c, hc = config.planes, config.planes * 2
        n1, n2, n3, n4 = config.layers

        self.conv1 = nn.Sequential(
            nn.Conv2d(3, c, 3, stride=2, padding=1, bias=True),
            nn.BatchNorm2d(c, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, stride=2, padding=1, bias=True),
            nn.BatchNorm2d(c, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )
        self.relu = nn.ReLU(inplace=False)
        # Registration order below is the official state_dict order.
        self.layer1 = make_layer(BasicBlock, c, c, n1)
        self.layer2 = make_layer(BasicBlock, c, 2 * c, n2, stride=2)
        if config.split_stage3:
            half = n3 // 2
            self.layer3_1 = make_layer(BasicBlock, 2 * c, 4 * c, half, stride=2)
            self.layer3_2 = make_layer(BasicBlock, 4 * c, 4 * c, half)
        else:
            self.layer3 = make_layer(BasicBlock, 2 * c, 4 * c, n3, stride=2)
        self.layer4 = make_layer(BasicBlock, 4 * c, 8 * c, n4, stride=2)
        if config.split_stage3:
            self.compression3_1 = nn.Sequential(*conv_bn(4 * c, hc, 1))
            self.compression3_2 = nn.Sequential(*conv_bn(4 * c, hc, 1))
        else:
            self.compression3 = nn.Sequential(*conv_bn(4 * c, hc, 1))
        self.compression4 = nn.Sequential(*conv_bn(8 * c, hc, 1))
        if config.split_stage3:
            self.down3_1 = nn.Sequential(*conv_bn(hc, 4 * c, 3, stride=2))
            self.down3_2 = nn.Sequential(*conv_bn(hc, 4 * c, 3, stride=2))
        else:
            self.down3 = nn.Sequential(*conv_bn(hc, 4 * c, 3, stride=2))
        self.down4 = nn.Sequential(
            *conv_bn(hc, 4 * c, 3, stride=2), nn.ReLU(inplace=True), *conv_bn(4 * c, 8 * c, 3, stride=2)
        )
        if config.split_stage3:
            half = n3 // 2
            self.layer3_1_ = make_layer(BasicBlock, 2 * c, hc, half)
            self.layer3_2_ = make_layer(BasicBlock, hc, hc, half)
        else:
            self.layer3_ = make_layer(BasicBlock, 2 * c, hc, n3)
        self.layer4_ = make_layer(BasicBlock, hc, hc, n4)
        self.layer5_ = make_layer(Bottleneck, hc, hc, 1)
        self.layer5 = make_layer(Bottleneck, 8 * c, 8 * c, 1, stride=2)
        self.spp = DAPPM(16 * c, config.spp_planes, 4 * c)
        if aux:
            self.seghead_extra = SegHead(hc, config.head_planes, num_classes)
        self.final_layer = SegHead(4 * c, config.head_planes, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _fuse(self, low: torch.Tensor, high: torch.Tensor, down: nn.Module, compression: nn.Module,
              size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Bilateral fusion: both sums read the pre-fusion tensors of both branches."""
        fused_low = low + down(self.relu(high))
        fused_high = high + resize(compression(self.relu(low)), size)
        return fused_low, fused_high

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        size = (x.shape[-2] // OUTPUT_STRIDE, x.shape[-1] // OUTPUT_STRIDE)
        x = self.layer1(self.conv1(x))
        x = self.layer2(self.relu(x))
        if self.config.split_stage3:
            low, high = self.layer3_1(self.relu(x)), self.layer3_1_(self.relu(x))
            low, high = self._fuse(low, high, self.down3_1, self.compression3_1, size)
            low, high = self.layer3_2(self.relu(low)), self.layer3_2_(self.relu(high))
            low, high = self._fuse(low, high, self.down3_2, self.compression3_2, size)
        else:
            low, high = self.layer3(self.relu(x)), self.layer3_(self.relu(x))
            low, high = self._fuse(low, high, self.down3, self.compression3, size)
        aux_input = high
        low, high = self.layer4(self.relu(low)), self.layer4_(self.relu(high))
        low, high = self._fuse(low, high, self.down4, self.compression4, size)
        high = self.layer5_(self.relu(high))
        low = resize(self.spp(self.layer5(self.relu(low))), size)
        logits = self.final_layer(low + high)
        if self.aux and self.training:
            return [logits, self.seghead_extra(aux_input)]
        return logits


def create_model(name: str, num_classes: int = 19, aux: bool = False) -> DDRNet:
    """A DDRNet variant by name: ``ddrnet23_slim``, ``ddrnet23`` or ``ddrnet39``.

    ``aux=True`` adds the training-only auxiliary head (``seghead_extra``); in eval mode
    ``forward`` always returns the 1/8-resolution logits tensor alone.
    """
    key = name.lower().replace("-", "_")
    if key not in VARIANTS:
        raise ValueError(f"unknown DDRNet variant {name!r}; choose one of {', '.join(VARIANTS)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    return DDRNet(VARIANTS[key], num_classes=num_classes, aux=aux)


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Logits at 1/8 -> logits at ``size`` (bilinear, align_corners=False, as the official eval)."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
