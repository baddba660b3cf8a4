"""Fast forward passes of the graph students (issue 15): the same parameters and the same function as the
readable modules of :mod:`itespy.models.graph`, computed with fewer, larger kernels.

The readable modules keep features as (batch, channels, joints) = (B, D, N), the paper's H ∈ R^{D×N}, and
spell every equation out. Here features are kept as (D, B, N) ("channels first"), so that

* every per-joint linear map (w_d of Eq. 4, W1, W2, f, g of Eq. 5, the SemGCN and non-local maps) is one
  matrix product over all B·N joints, with no transposes, and the maps that read the same input are stacked
  into one product;
* Eq. 4's per-channel joint mixing (w_d H) ρ(M_d ⊙ A) is one batched product over the D channels;
* batch norm is the module's own, applied to a (1, D, B·N) view (statistics over the same B·N values).

Two identities of Eq. 5 save work without changing the function (up to float rounding):
* f(g(H) ρ) = (W_f W_g H) ρ + (W_f b_g + b_f) 1ᵀ, because every column of the softmax ρ sums to 1;
  the two D×D maps become one, composed once per call (D³ operations, not B·N·D²);
* ρ(Hᵀ W1ᵀ W2 H) needs only W1ᵀ W2 H: the two D×D maps W1, W2 become one (composed once per call);
* in the reference non-local block, wᵀ[θ(x_i); φ(x_j)] needs only w_θᵀθ(x_i): the map w_θᵀ W_θ is one row.

``tests/test_models.py`` compares outputs and gradients with the readable modules on fixed weights.
"""
from __future__ import annotations

import torch


def applies(model) -> bool:
    """Whether ``model`` (with ``use_fast_path = True``) may take the fast path: not while a forward hook is registered
    on one of its layers, since the fast path never calls the layers and the hook would not fire. (Global
    hooks, which tools such as FlopCounterMode install for every module, do not count: the model itself is
    still called.)"""
    if not model.use_fast_path:
        return False
    return not any(m._forward_hooks or m._forward_pre_hooks for m in _layers(model)[1:])


def _layers(model) -> tuple:
    """``model`` and all its submodules, listed once (walking the module tree costs more than a whole layer
    at batch 1) and listed again when a direct child was replaced."""
    children = tuple(model._modules.values())
    cached = model.__dict__.get("_fused_layers")
    if cached is None or cached[0] != children:
        cached = (children, tuple(model.modules()))
        model.__dict__["_fused_layers"] = cached
    return cached[1]


def channels_first(keypoints_2d: torch.Tensor) -> torch.Tensor:
    """(B, N, 2) keypoints -> (2, B, N) features."""
    return keypoints_2d.permute(2, 0, 1).contiguous()


def _norm(norm, h: torch.Tensor) -> torch.Tensor:
    """The module's batch norm over channels of (D, B, N) features (statistics over all B·N joints)."""
    d, b, n = h.shape
    return norm(h.reshape(1, d, b * n)).view(d, b, n)


def _rows(h: torch.Tensor) -> torch.Tensor:
    return h.reshape(h.shape[0], -1)


def physical_graph_conv(conv, h: torch.Tensor) -> torch.Tensor:
    """Eq. 4 on (D, B, N) features."""
    _, b, n = h.shape
    wh = (conv.weight @ _rows(h)).view(-1, b, n)
    out = torch.bmm(wh, conv.edge_weights())  # per channel d: (w_d H) ρ(M_d ⊙ A)
    return out + conv.bias[:, :, None] if conv.bias is not None else out


class _JointProducts(torch.autograd.Function):
    """(B, N, N) products h_iᵀ k_j of the joints of each pose, from (D, B, N) features h and k.

    The same products as ``torch.bmm(h.permute(1, 2, 0), k.permute(1, 0, 2))``; the backward computes both
    gradients as (B, D, N) products, whose (D, B, N) view has runs of N joints. (bmm's own backward gives h
    a (B, N, D) gradient, a view with runs of one element that made every later addition three times slower.)"""

    @staticmethod
    def forward(ctx, h, k):
        ctx.save_for_backward(h, k)
        return torch.bmm(h.permute(1, 2, 0), k.permute(1, 0, 2))

    @staticmethod
    def backward(ctx, grad):
        h, k = ctx.saved_tensors
        grad_h = torch.bmm(k.permute(1, 0, 2), grad.transpose(1, 2)).permute(1, 0, 2) if ctx.needs_input_grad[0] else None
        grad_k = torch.bmm(h.permute(1, 0, 2), grad).permute(1, 0, 2) if ctx.needs_input_grad[1] else None
        return grad_h, grad_k


def _joint_products(h: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled() and (h.requires_grad or k.requires_grad):
        return _JointProducts.apply(h, k)
    return torch.bmm(h.permute(1, 2, 0), k.permute(1, 0, 2))


def adaptive_graph_block(block, h: torch.Tensor) -> torch.Tensor:
    """One block of Fig. 4, ReLU(BN(H_P + H_NP)), on (D, B, N) features."""
    d_in, b, n = h.shape
    physical, nonphysical = block.conv.physical, block.conv.nonphysical
    maps, biases = [], []
    if physical is not None:
        maps.append(physical.weight)
        biases.append(physical.bias[:, 0])
    if nonphysical is not None:
        maps += [nonphysical.f.weight @ nonphysical.g.weight,
                 nonphysical.scale * (nonphysical.w1.weight.t() @ nonphysical.w2.weight)]
        biases.append(nonphysical.f.weight @ nonphysical.g.bias + nonphysical.f.bias)
    stacked = (torch.cat(maps) if len(maps) > 1 else maps[0]) @ _rows(h)  # one product for every map
    # split the (maps, B, N) view, not slices of the product: the backward is one concatenation, no copies
    parts = iter(torch.split(stacked.view(-1, b, n), [m.shape[0] for m in maps]))
    bias = sum(biases)[:, None, None]  # every bias of both terms, added once
    out = torch.bmm(next(parts), physical.edge_weights()) if physical is not None else None  # Eq. 4
    if nonphysical is not None:
        fg, k = next(parts), next(parts)  # W_f W_g H, W1ᵀ W2 H / sqrt(D)
        affinity = torch.softmax(_joint_products(h, k), dim=1)  # ρ(Hᵀ W1ᵀ W2 H): (B, N, N)
        mixed = torch.bmm(fg.permute(1, 0, 2), affinity).permute(1, 0, 2)  # Eq. 5
        out = mixed + bias if out is None else out.add_(mixed)
    return torch.relu(_norm(block.norm, out if physical is None else out.add_(bias)))


def agcn_features(student, keypoints_2d: torch.Tensor) -> torch.Tensor:
    """The AGCN student's features (D, B, N): input layer, then residual pairs of adaptive graph blocks."""
    if _inference(student):
        return _agcn_features_inference(student, keypoints_2d)
    h = torch.relu(_norm(student.input_norm, physical_graph_conv(student.input, channels_first(keypoints_2d))))
    for first, second in zip(student.blocks[::2], student.blocks[1::2]):
        h = h + adaptive_graph_block(second, adaptive_graph_block(first, h))
    return h


def agcn_depth(student, keypoints_2d: torch.Tensor) -> torch.Tensor:
    """(B, N) depth offsets of :class:`~itespy.models.student.AGCNStudent`."""
    return physical_graph_conv(student.output, agcn_features(student, keypoints_2d))[0]


# Inference (eval mode, no autograd): the per-call constants -- stacked maps, ρ(M_d ⊙ A), f·g, and each batch
# norm folded into the maps before it -- are computed once and reused until a parameter or buffer changes.

def _inference(module) -> bool:
    return not module.training and not torch.is_grad_enabled()


def _cached(module, build):
    """``build(module)``, recomputed only when one of the module's tensors was changed (or replaced)."""
    key = tuple((t.data_ptr(), t._version) for m in _layers(module)
                for t in (*m._parameters.values(), *m._buffers.values()) if t is not None)
    cache = module.__dict__.get("_fused_inference")
    if cache is None or cache[0] != key:
        cache = (key, build(module))
        module.__dict__["_fused_inference"] = cache
    return cache[1]


def _bn_affine(norm):
    """Eval-mode batch norm as an affine map s·x + t."""
    s = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return s, norm.bias - s * norm.running_mean


def _folded_block(physical, nonphysical, norm) -> dict:
    """Constants of ReLU(BN(H_P + H_NP)) in eval mode: BN(x) = s·x + (β − s·μ), with s folded into the rows of
    w_d and of W_f W_g (both terms are linear in them) and every bias folded into one shift."""
    s, shift = _bn_affine(norm)
    maps, out = [], {}
    if physical is not None:
        maps.append(s[:, None] * physical.weight)
        out["edges"] = physical.edge_weights()
        shift = shift + s * physical.bias[:, 0]
    if nonphysical is not None:
        maps += [s[:, None] * (nonphysical.f.weight @ nonphysical.g.weight),
                 nonphysical.scale * (nonphysical.w1.weight.t() @ nonphysical.w2.weight)]
        shift = shift + s * (nonphysical.f.weight @ nonphysical.g.bias + nonphysical.f.bias)
    return {**out, "maps": torch.cat(maps), "sizes": [m.shape[0] for m in maps], "shift": shift[:, None, None],
            "nonphysical": nonphysical is not None}


def _folded_student(student) -> list:
    first = _folded_block(student.input, None, student.input_norm)
    return [first] + [_folded_block(b.conv.physical, b.conv.nonphysical, b.norm) for b in student.blocks]


def _inference_block(c: dict, h: torch.Tensor) -> torch.Tensor:
    _, b, n = h.shape
    parts = iter(torch.split((c["maps"] @ _rows(h)).view(-1, b, n), c["sizes"]))
    out = torch.bmm(next(parts), c["edges"]).add_(c["shift"]) if "edges" in c else c["shift"]
    if c["nonphysical"]:
        fg, k = next(parts), next(parts)
        affinity = torch.softmax(_joint_products(h, k), dim=1)
        mixed = torch.bmm(fg.permute(1, 0, 2), affinity).permute(1, 0, 2)
        out = out.add_(mixed) if "edges" in c else out + mixed
    return torch.relu_(out)


def _agcn_features_inference(student, keypoints_2d):
    blocks = _cached(student, _folded_student)
    h = _inference_block(blocks[0], channels_first(keypoints_2d))
    for first, second in zip(blocks[1::2], blocks[2::2]):
        h = h + _inference_block(second, _inference_block(first, h))
    return h


def sem_graph_conv(conv, h: torch.Tensor, plus: torch.Tensor | None = None) -> torch.Tensor:
    """The reference code's SemGCN layer on (D, B, N) features: a self term and a neighbour term (+ ``plus``,
    a (D', B, N) tensor added in the same kernels)."""
    _, b, n = h.shape
    d_out = conv.bias.shape[0]
    stacked = torch.cat([conv.w_self.weight, conv.w_neigh.weight]) @ _rows(h)
    adj = conv.edge_weights()  # (N, N), row m: the weights of joint m's inputs
    eye = torch.eye(n, dtype=h.dtype, device=h.device)
    own, neighbours = torch.split(stacked.view(2 * d_out, b, n), d_out)
    base = (conv.bias.repeat_interleave(b)[:, None] if plus is None
            else (plus + conv.bias[:, None, None]).view(d_out * b, n))
    neighbour_term = torch.addmm(base, neighbours.reshape(d_out * b, n), (adj * (1 - eye)).t())
    return torch.addcmul(neighbour_term.view(d_out, b, n), own, torch.diagonal(adj))


def grouped_nonlocal(block, h: torch.Tensor) -> torch.Tensor:
    """The reference code's grouped non-local block, W(y) + x, on (D, B, N) features.

    The readable module reorders the joints into NONLOCAL_GROUPS, max-pools neighbouring pairs and orders
    them back; here the pairs are max-pooled directly (one maximum of two selections) and everything else
    stays in the joint order, which computes the same values without the two reorderings."""
    d, b, n = h.shape
    inner = block.inner
    w = block.concat_project.weight.view(2 * inner)
    w_theta, w_phi = w[:inner], w[inner:]
    maps = torch.cat([(w_theta @ block.theta.weight[:, :, 0])[None], block.phi.weight[:, :, 0],
                      block.g.weight[:, :, 0]])
    biases = torch.cat([(w_theta @ block.theta.bias)[None], block.phi.bias, block.g.bias])
    stacked = (maps @ _rows(h) + biases[:, None]).view(-1, b, n)
    a, phi_g = torch.split(stacked, [1, 2 * inner])
    y = _nonlocal_y(a, phi_g, w_phi, _pair_selection(block.pairs, n, h))
    conv, norm = block.out[0], block.out[1]
    wy = conv.weight[:, :, 0] @ y.permute(1, 0, 2).reshape(inner, b * n) + conv.bias[:, None]
    return _norm(norm, wy.view(d, b, n)) + h


class _PairMax(torch.autograd.Function):
    """Max-pooling of joint pairs: (C, B, N) -> (C, B, M), output m = max(t[..., first_m], t[..., second_m]).

    Each side is picked by one product with a 0/1 selection matrix (gathers along the last dimension and
    torch.where were several times slower); ties go to the first joint of the pair, as MaxPool1d does."""

    @staticmethod
    def forward(ctx, t, select):
        first, second = _pair_sides(t, select)
        ctx.save_for_backward((first >= second).to(t.dtype), select)
        return torch.maximum(first, second).view(*t.shape[:2], -1)

    @staticmethod
    def backward(ctx, grad):
        take_first, select = ctx.saved_tensors
        c, b, m = grad.shape
        g = grad.reshape(c * b, m)
        to_first = g * take_first
        out = to_first @ select[0].t()
        return out.addmm_(g - to_first, select[1].t()).view(c, b, -1), None


def _pair_selection(pairs: torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
    """(2, N, M) 0/1 matrices: column m of the first (second) picks the first (second) joint of pair m."""
    return torch.nn.functional.one_hot(pairs, n).to(like.dtype).transpose(1, 2)


def _pair_sides(t: torch.Tensor, select: torch.Tensor) -> tuple:
    """The first and the second joint of every pair, (C·B, M) each, from (C, B, N) features."""
    rows = t.reshape(-1, t.shape[-1])
    return rows @ select[0], rows @ select[1]


def _pair_max(t: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled() and t.requires_grad:
        return _PairMax.apply(t, select)
    return torch.maximum(*_pair_sides(t, select)).view(*t.shape[:2], -1)


def _nonlocal_y(a, phi_g, w_phi, select, divide: bool = True) -> torch.Tensor:
    """y of the non-local block, (B, inner, N), from a = w_θᵀ θ(x_i) (1, B, N) and φ(x), g(x) stacked
    (2·inner, B, N): keys and values max-pooled over each pair of joints (M positions), affinity
    ReLU(a_i + w_φᵀ φ_j) / M (``divide=False``: the caller folded 1/M into a and w_φ)."""
    phi, g = torch.chunk(_pair_max(phi_g, select), 2)
    inner, b, m = phi.shape
    b_j = (w_phi @ phi.reshape(inner, b * m)).view(b, 1, m)  # w_φᵀ φ(x_j)
    f = torch.relu(a.view(b, -1, 1) + b_j)  # (B, N, M)
    return torch.bmm(g.permute(1, 0, 2), (f / m if divide else f).transpose(1, 2))


def semgcn_depth(student, keypoints_2d: torch.Tensor) -> torch.Tensor:
    """(B, N) depth offsets of :class:`~itespy.models.student.SemGCNStudent`."""
    if _inference(student):
        return _semgcn_depth_inference(student, keypoints_2d)
    h = torch.relu(_norm(student.input_norm, sem_graph_conv(student.input, channels_first(keypoints_2d))))
    for block in student.blocks:
        out = h
        for layer in block:
            out = torch.relu(_norm(layer.norm, sem_graph_conv(layer.conv, out, grouped_nonlocal(
                layer.nonlocal_block, out))))
        h = h + out
    return sem_graph_conv(student.output, h)[0]


def agcn_trunk_features(trunk, keypoints_2d: torch.Tensor) -> torch.Tensor:
    """Table 7's AGCN teacher trunk: the same blocks, flattened per pose as (B, D·N) in (D, N) order."""
    h = agcn_features(trunk, keypoints_2d)
    return h.permute(1, 0, 2).reshape(h.shape[1], -1)


def _folded_sem_layer(conv, norm=None, nonlocal_block=None) -> dict:
    """Constants of ReLU(BN(gconv(h) [+ NL(h)])) in eval mode, NL(h) = BN2(W y + b) + h: the batch norm scale s
    folded into the self and neighbour maps and into W, every bias into one shift; the non-local maps stacked
    after the graph conv's so that one product serves both, with their biases in that product's bias column.
    Without ``norm``: the bare graph conv (the output layer)."""
    if norm is None:
        s, shift = torch.ones_like(conv.bias), torch.zeros_like(conv.bias)
    else:
        s, shift = _bn_affine(norm)
    adj = conv.edge_weights()
    eye = torch.eye(adj.shape[0], dtype=adj.dtype, device=adj.device)
    maps = [s[:, None] * conv.w_self.weight, s[:, None] * conv.w_neigh.weight]
    biases = [torch.zeros(2 * len(s), dtype=s.dtype, device=s.device)]
    shift = shift + s * conv.bias
    out = {"diagonal": torch.diagonal(adj).clone(), "neighbours": (adj * (1 - eye)).t().contiguous(),
           "relu": norm is not None}
    if nonlocal_block is not None:
        nl, inner = nonlocal_block, nonlocal_block.inner
        w = nl.concat_project.weight.view(2 * inner)
        m = nl.pairs.shape[1]  # the affinity's 1/M, folded into w_θ and w_φ (ReLU(x) / M = ReLU(x / M))
        maps += [(w[:inner] @ nl.theta.weight[:, :, 0])[None] / m, torch.cat([nl.phi.weight, nl.g.weight])[:, :, 0]]
        biases += [(w[:inner] @ nl.theta.bias)[None] / m, nl.phi.bias, nl.g.bias]
        s2, t2 = _bn_affine(nl.out[1])
        out.update(inner=inner, select=_pair_selection(nl.pairs, adj.shape[0], adj), w_phi=w[inner:] / m,
                   s=s[:, None], w_out=(s * s2)[:, None] * nl.out[0].weight[:, :, 0])
        shift = shift + s * (s2 * nl.out[0].bias + t2)
    out.update(maps=torch.cat(maps), bias=torch.cat(biases)[:, None], sizes=[m.shape[0] for m in maps],
               shift=shift[:, None])
    return out


def _folded_semgcn(student) -> list:
    layers = [_folded_sem_layer(student.input, student.input_norm)]
    for block in student.blocks:
        layers += [_folded_sem_layer(layer.conv, layer.norm, layer.nonlocal_block) for layer in block]
    return layers + [_folded_sem_layer(student.output)]


def _inference_sem_layer(c: dict, h: torch.Tensor) -> torch.Tensor:
    _, b, n = h.shape
    parts = torch.split(torch.addmm(c["bias"], c["maps"], _rows(h)).view(-1, b, n), c["sizes"])
    d = c["shift"].shape[0]
    if len(parts) > 2:  # the shift, W y of the non-local block and its s·h, then the graph conv's terms
        y = _nonlocal_y(parts[2], parts[3], c["w_phi"], c["select"], divide=False)
        base = torch.addmm(c["shift"], c["w_out"], y.permute(1, 0, 2).reshape(c["inner"], b * n))
        base = torch.addcmul(base, c["s"], _rows(h)).view(d * b, n)
    else:
        base = c["shift"].repeat_interleave(b, dim=0)
    out = torch.addcmul(torch.addmm(base, parts[1].reshape(d * b, n), c["neighbours"]).view(d, b, n),
                        parts[0], c["diagonal"])
    return torch.relu_(out) if c["relu"] else out


def _semgcn_depth_inference(student, keypoints_2d):
    layers = _cached(student, _folded_semgcn)
    h = _inference_sem_layer(layers[0], channels_first(keypoints_2d))
    for i in range(1, len(layers) - 1, 2):
        h = h + _inference_sem_layer(layers[i + 1], _inference_sem_layer(layers[i], h))
    return _inference_sem_layer(layers[-1], h)[0]
