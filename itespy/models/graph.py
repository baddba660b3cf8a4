"""Graph convolutions of the student network (paper Sec. 3.3) and of the authors' reference code.

Features are laid out (batch, channels, joints) = (B, D, N) throughout, matching the paper's H ∈ R^{D×N}.

* :class:`PhysicalGraphConv` -- Eq. 4, one trainable edge-weight mask M_d per output channel.
* :class:`NonPhysicalGraphConv` -- Eq. 5, data-dependent affinity ρ(Hᵀ W1ᵀ W2 H) between all joint pairs.
* :class:`AdaptiveGraphConv` -- H' = H_P + H_NP (either term can be switched off for Table 8).
* :class:`SemGraphConv`, :class:`GroupedNonLocal` -- the reference code's SemGCN-style layer and its
  grouped non-local block (see docs/paper_vs_code.md).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..skeleton import NUM_JOINTS, adjacency

GRAPH_TYPES = ("both", "physical", "nonphysical")
# Joint groups of the reference code's non-local block (pairs are max-pooled together).
NONLOCAL_GROUPS = ((2, 3), (5, 6), (1, 4), (0, 7), (8, 10), (15, 16), (12, 13), (11, 14), (9,))
_NEG_INF = float("-inf")  # logit for "no edge" in the masked softmax (every joint has a self loop)


def _adjacency_tensor() -> torch.Tensor:
    return torch.from_numpy(adjacency(self_loops=True))


class PhysicalGraphConv(nn.Module):
    """Eq. 4: H_P = ⋃_d σ(w_d H ρ(M_d ⊙ A)).

    For each output channel d, the input features are first mixed across channels by w_d (a row of W),
    then across joints by ρ(M_d ⊙ A): a column-wise softmax over the physical neighbours (self loops
    included) of each joint. Taken literally, ρ(M_d ⊙ A) would also give non-edges the weight e^0; we
    read the ⊙ A as a mask (non-edges get zero weight), as in the adaptive graphs the paper cites.
    σ is applied by the block (batch norm + ReLU after H_P + H_NP, Fig. 4), so it is not applied here.
    M_d starts at 1 on every edge, i.e. uniform weights over each joint's neighbours."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels))  # rows are w_d
        nn.init.xavier_uniform_(self.weight)
        self.edge_mask = nn.Parameter(torch.ones(out_channels, NUM_JOINTS, NUM_JOINTS))  # M_d
        self.bias = nn.Parameter(torch.zeros(out_channels, 1)) if bias else None
        self.register_buffer("adjacency", _adjacency_tensor(), persistent=False)

    def edge_weights(self) -> torch.Tensor:
        """ρ(M_d ⊙ A) for every channel: (D', N, N), each column sums to 1 over the neighbours."""
        logits = self.edge_mask.masked_fill(self.adjacency == 0, _NEG_INF)
        return torch.softmax(logits, dim=1)  # column-wise: normalise over source joints i

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        wh = torch.einsum("oi,bin->bon", self.weight, h)  # w_d H for every d: (B, D', N)
        out = torch.einsum("bon,onm->bom", wh, self.edge_weights())  # (w_d H) ρ(M_d ⊙ A)
        return out + self.bias if self.bias is not None else out


class NonPhysicalGraphConv(nn.Module):
    """Eq. 5: H_NP = f(g(H) ρ(Hᵀ W1ᵀ W2 H)).

    f and g are per-joint linear maps (shared by all joints), W1, W2 ∈ R^{D×D}; ρ is a softmax over each
    column of the N×N affinity. We divide the affinity logits by sqrt(D) (as in scaled dot-product
    attention) to keep the softmax from saturating at initialisation; this is a numerical choice."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.w1 = nn.Linear(in_channels, in_channels, bias=False)
        self.w2 = nn.Linear(in_channels, in_channels, bias=False)
        self.g = nn.Linear(in_channels, out_channels)
        self.f = nn.Linear(out_channels, out_channels)
        self.scale = 1.0 / math.sqrt(in_channels)

    def affinity(self, h: torch.Tensor) -> torch.Tensor:
        """ρ(Hᵀ W1ᵀ W2 H): (B, N, N), entry [i, j] is the weight of joint i in the output of joint j."""
        ht = h.transpose(1, 2)  # (B, N, D)
        logits = self.w1(ht) @ self.w2(ht).transpose(1, 2) * self.scale
        return torch.softmax(logits, dim=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        gh = self.g(h.transpose(1, 2)).transpose(1, 2)  # g(H): (B, D', N)
        mixed = gh @ self.affinity(h)  # (B, D', N)
        return self.f(mixed.transpose(1, 2)).transpose(1, 2)


class AdaptiveGraphConv(nn.Module):
    """The adaptive graph convolution layer H' = H_P + H_NP (Sec. 3.3); ``graph`` picks the terms (Table 8)."""

    def __init__(self, in_channels: int, out_channels: int, graph: str = "both"):
        super().__init__()
        if graph not in GRAPH_TYPES:
            raise ValueError(f"graph: expected one of {GRAPH_TYPES}, got {graph!r}")
        self.physical = PhysicalGraphConv(in_channels, out_channels) if graph in ("both", "physical") else None
        self.nonphysical = NonPhysicalGraphConv(in_channels, out_channels) if graph in ("both", "nonphysical") else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = 0
        if self.physical is not None:
            out = out + self.physical(h)
        if self.nonphysical is not None:
            out = out + self.nonphysical(h)
        return out


SEMGCN_INIT_GAIN = 1.414  # reference code: Xavier-uniform gain of the graph conv weights
SEMGCN_EDGE_INIT = 1.0  # reference code: every edge scalar starts at 1 before the softmax


class SemGraphConv(nn.Module):
    """Reference code's graph conv (SemGCN style): one learned scalar per edge of A (self loops included),
    row-wise softmax over the edges present, separate weights for the self term and the neighbour term.

    Initialised as the code does: the two weight matrices, stored there as one (2, in, out) tensor, are
    Xavier-uniform with gain 1.414 over that tensor's fans (fan_in = in·out, fan_out = 2·out), the bias is
    uniform in ±1/√out and the edge scalars start at 1."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.w_self = nn.Linear(in_channels, out_channels, bias=False)
        self.w_neigh = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        bound = SEMGCN_INIT_GAIN * math.sqrt(6.0 / (in_channels * out_channels + 2 * out_channels))
        for w in (self.w_self.weight, self.w_neigh.weight):
            nn.init.uniform_(w, -bound, bound)
        nn.init.uniform_(self.bias, -1.0 / math.sqrt(out_channels), 1.0 / math.sqrt(out_channels))
        adj = _adjacency_tensor()
        self.register_buffer("adjacency", adj, persistent=False)
        self.edge_logits = nn.Parameter(torch.full((int(adj.sum().item()),), SEMGCN_EDGE_INIT))

    def edge_weights(self) -> torch.Tensor:
        logits = torch.full_like(self.adjacency, _NEG_INF)
        logits = logits.masked_scatter(self.adjacency > 0, self.edge_logits)
        return torch.softmax(logits, dim=1)  # row-wise

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = h.transpose(1, 2)  # (B, N, D)
        adj = self.edge_weights()
        eye = torch.eye(NUM_JOINTS, dtype=x.dtype, device=x.device)
        out = (adj * eye) @ self.w_self(x) + (adj * (1 - eye)) @ self.w_neigh(x) + self.bias
        return out.transpose(1, 2)


class GroupedNonLocal(nn.Module):
    """Reference code's non-local block, *concatenation* form (Wang et al. 2018), over the joints
    reordered into NONLOCAL_GROUPS; keys and values are sub-sampled by max-pooling pairs (17 -> 8 positions),
    embedded width = channels // 2.

    Affinity of joint i to position j: ReLU(wᵀ[θ(x_i); φ(x_j)]) / M (M = number of sub-sampled positions;
    no softmax). Since wᵀ[θ; φ] = w_θᵀθ(x_i) + w_φᵀφ(x_j), it is computed as ReLU(a_i + b_j) without
    forming the concatenated (B, 2C, N, M) tensor. y = affinity · g(x); the block returns W(y) + x, where W
    is a 1×1 map and a batch norm whose scale and shift start at zero, so the block starts as the identity."""

    def __init__(self, channels: int):
        super().__init__()
        inner = max(1, channels // 2)
        self.theta = nn.Conv1d(channels, inner, 1)
        self.phi = nn.Conv1d(channels, inner, 1)
        self.g = nn.Conv1d(channels, inner, 1)
        self.concat_project = nn.Conv2d(2 * inner, 1, 1, bias=False)  # w of the concatenation form
        self.out = nn.Sequential(nn.Conv1d(inner, channels, 1), nn.BatchNorm1d(channels))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)
        order = [j for group in NONLOCAL_GROUPS for j in group]
        self.register_buffer("order", torch.tensor(order), persistent=False)
        self.register_buffer("inverse", torch.argsort(torch.tensor(order)), persistent=False)
        pooled = order[:len(order) // 2 * 2]  # MaxPool1d(2) pools positions (0, 1), (2, 3), ...; drops the last
        self.register_buffer("pairs", torch.tensor([pooled[0::2], pooled[1::2]]), persistent=False)
        self.pool = nn.MaxPool1d(2)
        self.inner = inner

    def affinity(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, M) affinities of the reordered features x (B, C, N) to the M pooled positions."""
        w = self.concat_project.weight.view(2 * self.inner)
        a = torch.einsum("bcn,c->bn", self.theta(x), w[:self.inner])  # w_θᵀ θ(x_i)
        b = torch.einsum("bcm,c->bm", self.pool(self.phi(x)), w[self.inner:])  # w_φᵀ φ(x_j)
        f = torch.relu(a[:, :, None] + b[:, None, :])
        return f / f.shape[-1]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = h[:, :, self.order]
        g = self.pool(self.g(x)).transpose(1, 2)  # (B, M, C)
        y = self.out((self.affinity(x) @ g).transpose(1, 2))  # W(y): (B, channels, N)
        return (y + x)[:, :, self.inverse]  # W(y) + x, back in the joint order
