"""Building blocks shared by the teacher and the student: the fully connected residual trunk (the teacher's
feature extractor, Table 4's ResFC student) and the adaptive graph block (Fig. 4: the AGCN student, Table 7's
AGCN teacher trunk)."""
from __future__ import annotations

import torch
from torch import nn

from ..skeleton import NUM_JOINTS
from . import fused
from .graph import AdaptiveGraphConv, PhysicalGraphConv


class AdaptiveGraphBlock(nn.Module):
    """One block of Fig. 4: adaptive graph conv, batch norm, ReLU."""

    def __init__(self, channels: int, graph: str):
        super().__init__()
        self.conv = AdaptiveGraphConv(channels, channels, graph)
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, h):
        return torch.relu(self.norm(self.conv(h)))


class ResidualFC(nn.Module):
    """One fully connected residual layer 1024 -> 256 -> 1024 with batch norm (paper Sec. 4.2).

    ``extra_bottleneck=True`` gives the reference code's 1024 -> 256 -> 256 -> 1024 layout."""

    def __init__(self, hidden: int, bottleneck: int, extra_bottleneck: bool = False):
        super().__init__()
        widths = [hidden, bottleneck] + ([bottleneck] if extra_bottleneck else []) + [hidden]
        layers = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b)]
            if i < len(widths) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return (x + self.body(x)).relu_()


class ResFCTrunk(nn.Module):
    """Feature extractor: flatten (B,17,D) -> linear -> BN -> ReLU -> ``num_blocks`` residual FC layers."""

    def __init__(self, hidden: int = 1024, bottleneck: int = 256, num_blocks: int = 6,
                 in_features: int = NUM_JOINTS * 2, extra_bottleneck: bool = False):
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*(ResidualFC(hidden, bottleneck, extra_bottleneck) for _ in range(num_blocks)))
        self.out_features = hidden

    def forward(self, x):
        return self.blocks(self.stem(x.flatten(1)))


class AGCNTrunk(nn.Module):
    """Table 7's alternative feature extractor: the student's adaptive graph blocks over the joints,
    then the per-joint features flattened into one vector for the coefficient and camera heads.

    ``channels`` per joint and ``num_blocks`` (even: the blocks run in residual pairs) come from the config's
    ``teacher_hidden`` and ``teacher_blocks``; Table 7's row sets them to the student's 64 and 8."""

    def __init__(self, channels: int = 64, num_blocks: int = 8, graph: str = "both"):
        super().__init__()
        if num_blocks < 2 or num_blocks % 2:
            raise ValueError(f"AGCN trunk: num_blocks (teacher_blocks) expected an even number >= 2 (the blocks "
                             f"run in residual pairs), got {num_blocks}")
        self.input = PhysicalGraphConv(2, channels)
        self.input_norm = nn.BatchNorm1d(channels)
        self.blocks = nn.ModuleList(AdaptiveGraphBlock(channels, graph) for _ in range(num_blocks))
        self.out_features = channels * NUM_JOINTS

    use_fast_path = True  # forward with models.fused (same function); False: the readable modules

    def forward(self, x):
        if fused.applies(self):
            return fused.agcn_trunk_features(self, x)
        h = torch.relu(self.input_norm(self.input(x.transpose(1, 2))))
        for first, second in zip(self.blocks[::2], self.blocks[1::2]):
            h = h + second(first(h))
        return h.flatten(1)
