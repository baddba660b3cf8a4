"""Student networks (paper Sec. 3.3): 2D pose -> per-joint depth offsets d -> 3D pose (u·z, v·z, d).

* :class:`AGCNStudent` -- the paper's adaptive graph convolution network: an input graph layer, 8 adaptive
  graph convolution blocks (Fig. 4: H_P + H_NP, batch norm, ReLU) with a residual connection across each
  consecutive pair, and an output graph layer giving one depth offset per joint.
* :class:`SemGCNStudent` -- the authors' public code (``variant="reference"``): SemGCN-style graph conv plus
  grouped non-local blocks, 4 residual blocks of 2 layers, 128 channels.
* :class:`ResFCStudent` -- the fully connected residual student of Table 4.
"""
from __future__ import annotations

import torch
from torch import nn

from ..geometry import lift_with_depth
from ..skeleton import NUM_JOINTS
from . import fused
from .blocks import AdaptiveGraphBlock, ResFCTrunk
from .graph import GroupedNonLocal, PhysicalGraphConv, SemGraphConv


class _StudentBase(nn.Module):
    """Every student starts by predicting zero depth offsets (a flat pose at distance t): the output
    layer is zero-initialised, which keeps the first cycle losses (Eq. 7) small and training stable.

    Which forward runs: with ``use_fast_path`` (True by default; graph students) ``depth`` calls
    :mod:`itespy.models.fused` (the same function on the same parameters, fewer and larger kernels); with
    ``use_fast_path = False``, or while a forward hook is registered on one of the layers (so the hook sees
    its layer), the readable modules (``features`` and ``output``) run as written. ``fused.applies`` decides."""

    use_fast_path = True

    def _zero_output(self, layer):
        for p in layer.parameters():
            nn.init.zeros_(p)

    def depth(self, keypoints_2d: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, keypoints_2d: torch.Tensor) -> dict:
        """keypoints_2d: (B, 17, 2) model-space 2D. Returns depth offsets d (B, 17) and pose_3d (B, 17, 3)."""
        d = self.depth(keypoints_2d)
        return {"depth": d, "pose_3d": lift_with_depth(keypoints_2d, d)}


class AGCNStudent(_StudentBase):
    """Paper student: ``num_blocks`` adaptive graph blocks (8), residual across each consecutive pair."""

    def __init__(self, channels: int = 128, num_blocks: int = 8, graph: str = "both"):
        super().__init__()
        if num_blocks % 2:
            raise ValueError(f"num_blocks: expected an even number (residual pairs), got {num_blocks}")
        self.graph = graph
        self.input = PhysicalGraphConv(2, channels)
        self.input_norm = nn.BatchNorm1d(channels)
        self.blocks = nn.ModuleList(AdaptiveGraphBlock(channels, graph) for _ in range(num_blocks))
        self.output = PhysicalGraphConv(channels, 1)
        self._zero_output(self.output)

    def features(self, keypoints_2d: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.input_norm(self.input(keypoints_2d.transpose(1, 2))))
        for first, second in zip(self.blocks[::2], self.blocks[1::2]):
            h = h + second(first(h))  # residual across two consecutive blocks
        return h

    def depth(self, keypoints_2d):
        if fused.applies(self):
            return fused.agcn_depth(self, keypoints_2d)
        return self.output(self.features(keypoints_2d))[:, 0, :]


class SemGCNLayer(nn.Module):
    """Reference layer: ReLU(BN(gconv(x) + NL(x))) with NL(x) = W(y) + x, i.e. ReLU(BN(gconv(x) + x + W(y)))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = SemGraphConv(channels, channels)
        self.nonlocal_block = GroupedNonLocal(channels)
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, h):
        return torch.relu(self.norm(self.conv(h) + self.nonlocal_block(h)))


class SemGCNStudent(_StudentBase):
    """Reference-code student: input graph conv 2 -> 128, 4 residual blocks of 2 layers, output 128 -> 1.

    Built as the code builds it, so its output layer keeps the graph conv's own initialisation (the paper
    students start from zero depth offsets instead)."""

    def __init__(self, channels: int = 128, num_blocks: int = 4):
        super().__init__()
        self.input = SemGraphConv(2, channels)
        self.input_norm = nn.BatchNorm1d(channels)
        self.blocks = nn.ModuleList(nn.Sequential(SemGCNLayer(channels), SemGCNLayer(channels))
                                    for _ in range(num_blocks))
        self.output = SemGraphConv(channels, 1)

    def depth(self, keypoints_2d):
        if fused.applies(self):
            return fused.semgcn_depth(self, keypoints_2d)
        h = torch.relu(self.input_norm(self.input(keypoints_2d.transpose(1, 2))))
        for block in self.blocks:
            h = h + block(h)
        return self.output(h)[:, 0, :]


class ResFCStudent(_StudentBase):
    """Table 4's ResFC student: the teacher's fully connected residual trunk, then 1024 -> 17 depths."""

    def __init__(self, hidden: int = 1024, bottleneck: int = 256, num_blocks: int = 6):
        super().__init__()
        self.trunk = ResFCTrunk(hidden, bottleneck, num_blocks)
        self.head = nn.Linear(hidden, NUM_JOINTS)
        self._zero_output(self.head)

    def depth(self, keypoints_2d):
        return self.head(self.trunk(keypoints_2d))
