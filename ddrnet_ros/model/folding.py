"""BatchNorm folding: an inference copy of a network with each BN merged into the conv before it.

Eval-mode BN after a conv is an affine map per channel, so it can be absorbed into the conv's
weights and bias: the same outputs (up to float rounding) with one pass over the tensor fewer.
Every inference backend starts from this folded copy; the loaded, official-layout module stays
untouched (checkpoints, export of the original, training).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .blocks import BasicBlock, Bottleneck, SegHead

#: (conv, bn) attribute pairs computed as bn(conv(x)) inside each block type.
_CONV_BN_PAIRS: dict[type, tuple[tuple[str, str], ...]] = {
    BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
    Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
    SegHead: (("conv1", "bn2"),),  # bn1 comes before conv1 (pre-activation): not foldable
}


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv computing ``bn(conv(x))`` with the eval-mode BN statistics folded in.

    Made with ``skip_init``: its weights are all overwritten, so drawing them first would only
    cost start-up time and advance the caller's random state."""
    fused = torch.nn.utils.skip_init(nn.Conv2d, conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                     conv.padding, conv.dilation, conv.groups, bias=True,
                                     padding_mode=conv.padding_mode)
    # a BN without running statistics (track_running_stats=False) has nothing to fold
    assert bn.running_mean is not None and bn.running_var is not None
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused.to(conv.weight.device, conv.weight.dtype)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every BN that directly follows a conv folded into it.

    Handles ``nn.Sequential`` runs of (Conv2d, BatchNorm2d) and the DDRNet blocks' named pairs;
    pre-activation BNs (BN -> ReLU -> conv, in DAPPM and the head input) are kept.
    """
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if isinstance(module, nn.Sequential):
            children = list(module._modules.items())
            for (name_a, a), (name_b, b) in zip(children, children[1:]):
                if type(a) is nn.Conv2d and type(b) is nn.BatchNorm2d:
                    module._modules[name_a] = fuse_conv_bn(a, b)
                    module._modules[name_b] = nn.Identity()
        for conv_name, bn_name in _CONV_BN_PAIRS.get(type(module), ()):
            conv, bn = getattr(module, conv_name), getattr(module, bn_name)
            if type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d:
                setattr(module, conv_name, fuse_conv_bn(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return folded
