"""A transposed convolution computed as one matrix product and a fold: the same layer (the same
weight and bias, so the same state dict and the same numbers up to float rounding) in
another formulation.

oneDNN's own kernel for a transposed convolution to an image's few channels (the decoder's
last layer, 32 -> 1 on MNIST) ran at a tenth of the matrix product's rate in
benchmarks/roofline.py; this formulation is the matrix product's. It pays only there: on
wider layers (64 -> 32) oneDNN's kernel is the faster one, so only layers that produce at
most FOLD_MAX_CHANNELS channels are folded. Whether a run folds is a measured choice of its
machine (aevae.training.measured); tests/test_measured.py holds the two formulations to the
same forward and backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FOLD_MAX_CHANNELS = 4  # an image's channels (1 grey, 3 colour), with room for an alpha channel


class FoldConvTranspose2d(nn.ConvTranspose2d):
    """`nn.ConvTranspose2d` (groups 1, dilation 1, no output padding) as `F.fold` of the
    product of the weight and the input: each input pixel's contribution to its kernel-sized
    patch of the output, the patches summed where they overlap."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if output_size is not None:  # a size asked for at the call: the reference layer works it out
            return super().forward(x, output_size)
        batch, channels, height, width = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        columns = torch.matmul(self.weight.reshape(channels, -1).t(), x.reshape(batch, channels, height * width))
        out = F.fold(columns, ((height - 1) * sh - 2 * ph + kh, (width - 1) * sw - 2 * pw + kw),
                     self.kernel_size, padding=self.padding, stride=self.stride)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1).to(out.dtype)


def foldable(module: nn.Module) -> bool:
    """A plain transposed convolution to an image's few channels (subclasses are left alone:
    they may compute something else)."""
    return (type(module) is nn.ConvTranspose2d and module.groups == 1 and module.dilation == (1, 1)
            and module.output_padding == (0, 0) and module.out_channels <= FOLD_MAX_CHANNELS)


def fold_transposed_convolutions(model: nn.Module) -> int:
    """Compute every foldable transposed convolution of `model` as a fold, in place (the
    class changes, the parameters stay); returns how many."""
    changed = [m for m in model.modules() if foldable(m)]
    for module in changed:
        module.__class__ = FoldConvTranspose2d
    return len(changed)


def unfold_transposed_convolutions(model: nn.Module) -> int:
    """The reverse of `fold_transposed_convolutions`: a model logged or handed on computes in
    the reference formulation, and needs nothing of aevae's to load."""
    changed = [m for m in model.modules() if type(m) is FoldConvTranspose2d]
    for module in changed:
        module.__class__ = nn.ConvTranspose2d
    return len(changed)
