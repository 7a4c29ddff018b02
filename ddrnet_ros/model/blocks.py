"""Building blocks of DDRNet (arXiv 2101.06085), laid out so that their state_dict keys
match the official checkpoints (ydhongHIT/DDRNet) exactly.

Where a ReLU sits decides numerical equality with the official model: every stage ends
pre-activation and the caller applies a non-inplace ReLU when it feeds the next op.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BN_MOMENTUM = 0.1


def resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Every resize in DDRNet: bilinear, align_corners=False, to an explicit size."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch, momentum=BN_MOMENTUM),
    ]


class BasicBlock(nn.Module):
    """3x3-3x3 residual block; ``relu_out=False`` leaves the output pre-activation."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 relu_out: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample
        self.relu_out = relu_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out)) + residual
        return self.relu(out) if self.relu_out else out


class Bottleneck(nn.Module):
    """The "RBB" bottleneck (1x1-3x3-1x1, expansion 2) closing each branch; no final ReLU by default."""

    expansion = 2

    def __init__(self, in_ch: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 relu_out: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.relu_out = relu_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out)) + residual
        return self.relu(out) if self.relu_out else out


def make_layer(block: type[BasicBlock] | type[Bottleneck], in_ch: int, planes: int, blocks: int,
               stride: int = 1) -> nn.Sequential:
    """A stage of ``blocks`` blocks; in a stage of two or more the last block ends pre-activation."""
    downsample = None
    if stride != 1 or in_ch != planes * block.expansion:
        downsample = nn.Sequential(*conv_bn(in_ch, planes * block.expansion, 1, stride))
    layers = [block(in_ch, planes, stride, downsample)]
    in_ch = planes * block.expansion
    for i in range(1, blocks):
        layers.append(block(in_ch, planes, relu_out=i != blocks - 1))
    return nn.Sequential(*layers)


def _bn_relu_conv(in_ch: int, out_ch: int, kernel: int, pool: nn.Module | None = None) -> nn.Sequential:
    """Pre-activation branch: [pool] -> BN -> ReLU -> conv (keys ``.0/.1/.3`` or ``.0/.2``)."""
    layers = [] if pool is None else [pool]
    layers += [
        nn.BatchNorm2d(in_ch, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False),
    ]
    return nn.Sequential(*layers)


class DAPPM(nn.Module):
    """Deep Aggregation Pyramid Pooling Module on the 1/64 low-resolution branch."""

    def __init__(self, in_ch: int, branch_ch: int, out_ch: int) -> None:
        super().__init__()
        # Registration order (scale1..4, scale0, process1..4, compression, shortcut) is the
        # official state_dict order.
        self.scale1 = _bn_relu_conv(in_ch, branch_ch, 1, nn.AvgPool2d(5, 2, 2))
        self.scale2 = _bn_relu_conv(in_ch, branch_ch, 1, nn.AvgPool2d(9, 4, 4))
        self.scale3 = _bn_relu_conv(in_ch, branch_ch, 1, nn.AvgPool2d(17, 8, 8))
        self.scale4 = _bn_relu_conv(in_ch, branch_ch, 1, nn.AdaptiveAvgPool2d((1, 1)))
        self.scale0 = _bn_relu_conv(in_ch, branch_ch, 1)
        self.process1 = _bn_relu_conv(branch_ch, branch_ch, 3)
        self.process2 = _bn_relu_conv(branch_ch, branch_ch, 3)
        self.process3 = _bn_relu_conv(branch_ch, branch_ch, 3)
        self.process4 = _bn_relu_conv(branch_ch, branch_ch, 3)
        self.compression = _bn_relu_conv(branch_ch * 5, out_ch, 1)
        self.shortcut = _bn_relu_conv(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        y = self.scale0(x)
        outs = [y]
        for scale, process in ((self.scale1, self.process1), (self.scale2, self.process2),
                               (self.scale3, self.process3), (self.scale4, self.process4)):
            y = process(resize(scale(x), size) + y)
            outs.append(y)
        return self.compression(torch.cat(outs, 1)) + self.shortcut(x)


class SegHead(nn.Module):
    """BN -> ReLU -> 3x3 conv -> BN -> ReLU -> 1x1 conv (with bias); no upsampling."""

    def __init__(self, in_ch: int, mid_ch: int, num_classes: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch, momentum=BN_MOMENTUM)
        self.conv1 = nn.Conv2d(in_ch, mid_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_ch, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(mid_ch, num_classes, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.relu(self.bn1(x)))
        return self.conv2(self.relu(self.bn2(x)))
