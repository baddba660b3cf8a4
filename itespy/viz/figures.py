"""Matplotlib figures for papers and ``figures/``: skeletons in 3D and 2D, skeleton galleries, atomic
byte-reproducible saving, and the training diagnostics (loss curves, error bars, joint-by-joint matrices).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..skeleton import BONES, NUM_JOINTS
from .poses import POSE_PALETTE, SIDE_COLORS, as_pose_array, joint_side


# ----------------------------------------------------------------------------------------------------
# matplotlib
# ----------------------------------------------------------------------------------------------------
def plot_skeleton_3d(ax, pose, color=None, label=None, alpha: float = 1.0, linestyle: str = "-",
                     linewidth: float = 2.0, markersize: float = 3.0):
    """Draw one 3D pose (17, 3) on a matplotlib 3D axis, as the camera sees it (depth into the page).

    ``color=None`` colours left/right/torso bones by :data:`SIDE_COLORS`; otherwise one colour. Axis
    limits grow to keep every pose drawn on ``ax`` visible, with equal scale on all axes."""
    pose = as_pose_array(pose, "pose")
    if pose.ndim != 2:
        raise ValueError(f"plot_skeleton_3d: pose must be one (17, 3) pose, got {pose.shape}")
    x, y, z = pose[:, 0], pose[:, 2], -pose[:, 1]  # matplotlib's vertical axis is up = -y
    for i, (p, c) in enumerate(BONES):  # the legend label goes on a bone if one colour, else on the joints
        ax.plot([x[p], x[c]], [y[p], y[c]], [z[p], z[c]], color=color or SIDE_COLORS[joint_side(c)], alpha=alpha,
                linestyle=linestyle, linewidth=linewidth, label=label if (i == 0 and color) else None)
    ax.plot(x, y, z, "o", color=color or SIDE_COLORS["torso"], markersize=markersize, alpha=alpha,
            label=None if color else label)
    lo, hi = pose.min(0)[[0, 2, 1]], pose.max(0)[[0, 2, 1]]
    lo[2], hi[2] = -hi[2], -lo[2]
    if hasattr(ax, "_itespy_box"):
        lo, hi = np.minimum(lo, ax._itespy_box[0]), np.maximum(hi, ax._itespy_box[1])
    ax._itespy_box = (lo, hi)
    centre, half = (lo + hi) / 2, max((hi - lo).max() / 2, 1e-9) * 1.05
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    ax.set_box_aspect((1, 1, 1))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("x")
    ax.set_ylabel("depth z")
    ax.set_zlabel("up (−y)")
    return ax


def plot_skeleton_2d(ax, kp2d, color=None, label=None, alpha: float = 1.0, linestyle: str = "-",
                     linewidth: float = 2.0, markersize: float = 3.0):
    """Draw one 2D pose (17, 2) (image coordinates: x right, y down) on a matplotlib axis, equal aspect."""
    kp2d = as_pose_array(kp2d, "kp2d", dims=(2,))
    if kp2d.ndim != 2:
        raise ValueError(f"plot_skeleton_2d: kp2d must be one (17, 2) pose, got {kp2d.shape}")
    for i, (p, c) in enumerate(BONES):
        ax.plot(kp2d[[p, c], 0], kp2d[[p, c], 1], color=color or SIDE_COLORS[joint_side(c)], alpha=alpha,
                linestyle=linestyle, linewidth=linewidth, label=label if (i == 0 and color) else None)
    ax.plot(kp2d[:, 0], kp2d[:, 1], "o", color=color or SIDE_COLORS["torso"], alpha=alpha, markersize=markersize,
            label=None if color else label)
    ax.set_aspect("equal", adjustable="datalim")
    if not ax.yaxis_inverted():
        ax.invert_yaxis()
    return ax


def new_figure(*args, **kwargs):
    import matplotlib.pyplot as plt  # deferred: importing itespy.viz must not pick a backend
    return plt.figure(*args, **kwargs)


def skeleton_grid(poses, titles=None, path=None, ncols: int | None = None, view: str = "3d", colors=None,
                  suptitle: str | None = None, panel_size: float = 2.4, elev: float = 12, azim: float = -55):
    """Gallery of skeletons (e.g. dictionary atoms): one panel per pose; returns the matplotlib figure.

    poses: (M, 17, 3) (or (M, 17, 2) with ``view="2d"``); ``view="2d"`` draws (x, y) only.
    ``colors``: None (left/right/torso), one colour, or one per pose. Saved to ``path`` if given."""
    poses = as_pose_array(poses, "poses", dims=(2, 3) if view == "2d" else (3,))
    if poses.ndim == 2:
        poses = poses[None]
    m = len(poses)
    ncols = ncols or min(m, 6)
    nrows = -(-m // ncols)
    fig = new_figure(figsize=(panel_size * ncols, panel_size * nrows + (0.4 if suptitle else 0)))
    for i, pose in enumerate(poses):
        col = colors[i] if isinstance(colors, (list, tuple)) else colors
        if view == "3d":
            ax = fig.add_subplot(nrows, ncols, i + 1, projection="3d")
            plot_skeleton_3d(ax, pose, color=col, linewidth=1.5, markersize=2)
            ax.view_init(elev=elev, azim=azim)
            ax.set_xticklabels([]), ax.set_yticklabels([]), ax.set_zticklabels([])
            ax.set_xlabel(""), ax.set_ylabel(""), ax.set_zlabel("")
        elif view == "2d":
            ax = fig.add_subplot(nrows, ncols, i + 1)
            plot_skeleton_2d(ax, pose[:, :2], color=col, linewidth=1.5, markersize=2)
            ax.set_xticks([]), ax.set_yticks([])
        else:
            raise ValueError(f"skeleton_grid: view must be '3d' or '2d', got {view!r}")
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    return _finish(fig, suptitle, path)


def _finish(fig, suptitle, path):
    """Title, tight layout and (when ``path`` is given) save: the last steps of every gallery figure."""
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig, path, svg: bool = False, dpi: int = 110) -> Path:
    """Write a matplotlib figure to ``path`` (PNG; with ``svg=True`` also ``path`` with suffix .svg).

    Atomic (temporary file in the same folder, then ``os.replace``) and byte-reproducible (no software or
    date stamp), so re-running a notebook does not churn committed figures. Returns the PNG path."""
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    targets = [(path, "png", {"Software": None})] + ([(path.with_suffix(".svg"), "svg", {"Date": None})] if svg else [])
    for target, fmt, metadata in targets:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata, bbox_inches="tight")
            os.chmod(tmp, 0o644)  # mkstemp creates 0600
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return path


# ----------------------------------------------------------------------------------------------------
# Training diagnostics (notebooks 00, 03, 04): loss curves, error bars, joint-by-joint matrices
# ----------------------------------------------------------------------------------------------------
LOSS_LABELS = {"loss_total": "total", "loss_rep": r"$\mathcal{L}_{REP}$", "loss_ric": r"$\mathcal{L}_{RIC}$",
               "loss_kd": r"$\mathcal{L}_{KD}$", "loss_rec": r"$\mathcal{L}_{REC}$",
               "loss_canon": r"$\mathcal{L}_{canon}$"}
JOINT_SHORT_NAMES = ("Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Neck",
                     "Head", "LSho", "LElb", "LWri", "RSho", "RElb", "RWri")


def plot_loss_curves(history, keys=None, ax=None, path=None, title: str | None = None, logy: bool = True,
                     weights: dict | None = None):
    """Per-epoch losses of one training stage (the records of ``history_teacher.json`` /
    ``history_student.json``: dicts with ``epoch`` and ``loss_*`` entries) on one matplotlib axis.

    ``keys``: which ``loss_*`` entries to draw (default: all but ``loss_total``); ``weights``: optional
    {key: λ} to draw λ·loss instead (the terms as they enter the total). Returns the figure."""
    records = list(history)
    if not records:
        raise ValueError("plot_loss_curves: the history is empty (no epoch was trained)")
    available = [k for k in records[0] if k.startswith("loss_")]
    keys = [k for k in available if k != "loss_total"] if keys is None else list(keys)
    missing = [k for k in keys if k not in available]
    if missing:
        raise ValueError(f"plot_loss_curves: history has no {missing}; available: {available}")
    if ax is None:
        fig = new_figure(figsize=(5.0, 3.4))
        ax = fig.add_subplot(1, 1, 1)
    epochs = [r["epoch"] for r in records]
    for k in keys:
        w = (weights or {}).get(k, 1.0)
        label = LOSS_LABELS.get(k, k)
        ax.plot(epochs, [w * r[k] for r in records], "o-", label=label if w == 1.0 else f"{w:g} · {label}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean loss per batch")
    ax.set_xticks(epochs)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    if path is not None:
        save_figure(ax.figure, path)
    return ax.figure


def plot_error_bars(errors: dict, labels=None, ax=None, path=None, unit: str = "mm", title: str | None = None,
                    ylabel: str | None = None):
    """Grouped bar chart of errors ``{model name: values}``, one group per label.

    values: a sequence (one per label; 17 values default to the joint names) or a dict {label: value}
    (e.g. a metrics ``per_action`` dict; labels then default to the first dict's keys). Returns the figure."""
    if not isinstance(errors, dict) or not errors:
        raise ValueError("plot_error_bars: errors must be a non-empty dict {name: values}")
    first = next(iter(errors.values()))
    if labels is None:
        labels = list(first) if isinstance(first, dict) else (
            list(JOINT_SHORT_NAMES) if len(first) == NUM_JOINTS else [str(i) for i in range(len(first))])
    table = {}
    for name, values in errors.items():
        row = [values[k] for k in labels] if isinstance(values, dict) else list(values)
        if len(row) != len(labels):
            raise ValueError(f"plot_error_bars: {name!r} has {len(row)} values for {len(labels)} labels")
        table[name] = np.asarray(row, dtype=np.float64)
    if ax is None:
        fig = new_figure(figsize=(max(5.0, 0.45 * len(labels) * max(1, len(table)) ** 0.5 + 1.5), 3.4))
        ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(table)
    x = np.arange(len(labels))
    for i, (name, row) in enumerate(table.items()):
        ax.bar(x + (i - (len(table) - 1) / 2) * width, row, width, label=name,
               color=POSE_PALETTE[i % len(POSE_PALETTE)])
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel or f"error ({unit})")
    if title:
        ax.set_title(title, fontsize=10)
    if len(table) > 1:
        ax.legend(fontsize=8)
    ax.figure.tight_layout()
    if path is not None:
        save_figure(ax.figure, path)
    return ax.figure


def plot_joint_matrix(matrix, ax=None, title: str | None = None, cmap: str = "viridis", vmin=None, vmax=None,
                      labels: bool = True, colorbar: bool = True):
    """Heatmap of a joint-by-joint matrix (17, 17), e.g. an adjacency A, ρ(M_d ⊙ A) (Eq. 4) or an
    affinity ρ(Hᵀ W1ᵀ W2 H) (Eq. 5). Entry [i, j] is row i (source joint), column j (output joint).
    Returns the matplotlib image."""
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (NUM_JOINTS, NUM_JOINTS):
        raise ValueError(f"plot_joint_matrix: expected a ({NUM_JOINTS}, {NUM_JOINTS}) matrix, got {matrix.shape}")
    if ax is None:
        ax = new_figure(figsize=(4.4, 3.8)).add_subplot(1, 1, 1)
    image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax)
    ticks = np.arange(NUM_JOINTS)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    if labels:
        ax.set_xticklabels(JOINT_SHORT_NAMES, rotation=90, fontsize=6)
        ax.set_yticklabels(JOINT_SHORT_NAMES, fontsize=6)
    else:
        ax.set_xticklabels([])
        ax.set_yticklabels([])
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
    return image


def joint_matrix_grid(matrices, titles=None, ncols: int | None = None, path=None, suptitle: str | None = None,
                      cmap: str = "viridis", shared_scale: bool = False, panel_size: float = 3.2):
    """Several (17, 17) matrices side by side (:func:`plot_joint_matrix`); ``shared_scale`` gives all panels
    one colour range. Returns the figure (saved to ``path`` if given)."""
    mats = [np.asarray(m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else m, np.float64)
            for m in matrices]
    if not mats:
        raise ValueError("joint_matrix_grid: no matrices to draw")
    ncols = ncols or min(len(mats), 4)
    nrows = -(-len(mats) // ncols)
    fig = new_figure(figsize=(panel_size * ncols + 0.3, panel_size * nrows + (0.4 if suptitle else 0)))
    lo, hi = (min(m.min() for m in mats), max(m.max() for m in mats)) if shared_scale else (None, None)
    for i, m in enumerate(mats):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        plot_joint_matrix(m, ax=ax, title=None if titles is None else titles[i], cmap=cmap, vmin=lo, vmax=hi,
                          labels=i % ncols == 0 or ncols == 1)
        if i % ncols != 0:  # column labels on every panel, row labels only on the first column
            ax.set_xticklabels(JOINT_SHORT_NAMES, rotation=90, fontsize=6)
    return _finish(fig, suptitle, path)


def plot_long_run(runs: dict, split: str = "val", path=None, title: str | None = None):
    """Long teacher runs of ``bench/teacher_long.py`` ({label: its JSON as a dict}) against SGD steps.

    Left: MPJPE (scale calibration) with the depth mirror (solid, the paper's protocol) and without it
    (dashed), with the flat pose of the same split (grey). Right: the share of poses whose depth mirror scores
    better, and the depth ratio (std of root-relative depth / std of x, y) beside the ground truth's (dotted).
    Returns the figure."""
    if not runs:
        raise ValueError("plot_long_run: no runs given; expected {label: bench/teacher_long.py JSON}")
    fig = new_figure(figsize=(11.0, 3.8))
    ax_err, ax_depth = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, (label, run) in enumerate(runs.items()):
        records = [r for r in run.get("records", []) if r.get("stage") == "teacher" and split in r]
        if not records:
            raise ValueError(f"plot_long_run: run {label!r} has no teacher checks on the {split!r} split")
        steps = [r["step"] for r in records]
        color = f"C{i}"
        ax_err.plot(steps, [r[split]["mpjpe"] for r in records], "-", color=color, label=f"{label}: with mirror")
        ax_err.plot(steps, [r[split]["mpjpe_nomirror"] for r in records], "--", color=color, label="without")
        ax_depth.plot(steps, [r[split]["mirror"] for r in records], "-", color=color, label=f"{label}: mirror share")
        ax_depth.plot(steps, [r[split]["depth_ratio"] for r in records], "--", color=color, label="depth ratio")
    first = next(iter(runs.values()))
    ax_err.axhline(first["flat"][split]["mpjpe"], color="0.5", linewidth=1, label="flat pose")
    ax_depth.axhline(first["gt_depth_ratio"][split], color="0.3", linestyle=":", linewidth=1,
                     label="ground truth's depth ratio")
    ax_err.set_xlabel("SGD step")
    ax_err.set_ylabel(f"{split} MPJPE, scale-calibrated (mm)")
    ax_depth.set_xlabel("SGD step")
    ax_depth.set_ylabel("share / ratio")
    for ax in (ax_err, ax_depth):
        ax.legend(fontsize=7)
    return _finish(fig, title, path)


def plot_student_gain(runs: dict, split: str = "test", path=None, title: str | None = None):
    """Students of ``bench/teacher_long.py --student-steps`` runs ({label: its JSON as a dict}) against their
    teachers: MPJPE (left) and P-MPJPE (right), with the depth mirror and scale calibration, mm, on ``split``; each
    student's curve against student SGD steps (solid), its kept teacher as a dashed line of the same colour, and
    the flat pose's error in each panel's title. Returns the figure."""
    if not runs:
        raise ValueError("plot_student_gain: no runs given; expected {label: bench/teacher_long.py JSON}")
    fig = new_figure(figsize=(11.0, 3.8))
    axes = {"mpjpe": fig.add_subplot(1, 2, 1), "p_mpjpe": fig.add_subplot(1, 2, 2)}
    for i, (label, run) in enumerate(runs.items()):
        records = [r for r in run.get("records", []) if r.get("stage") == "student" and split in r]
        if not records or "teacher_kept" not in run:
            raise ValueError(f"plot_student_gain: run {label!r} has no student checks on the {split!r} split; "
                             "expected a bench/teacher_long.py run with --student-steps")
        color = f"C{i}"
        for key, ax in axes.items():
            ax.plot([r["step"] for r in records], [r[split][key] for r in records], "-", color=color,
                    label=f"{label}: student")
            ax.axhline(run["teacher_kept"][split][key], color=color, linestyle="--", linewidth=1,
                       label=f"its teacher (step {run.get('teacher_kept_step', '?')})")
    flat = next(iter(runs.values())).get("flat", {}).get(split, {})
    for key, ax in axes.items():
        ax.set_xlabel("student SGD step")
        if key in flat:  # named, not drawn: a line that far up would flatten the curves
            ax.set_title(f"flat pose: {flat[key]:.1f} mm", fontsize=9)
        ax.set_ylabel(f"{split} {'MPJPE' if key == 'mpjpe' else 'P-MPJPE'}, with the mirror (mm)")
        ax.legend(fontsize=7)
    return _finish(fig, title, path)
