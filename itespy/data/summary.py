"""What is in a DATA spec (for ``python -m itespy data DATA [--figure PATH]``): counts, labels, bone
lengths; and a figure of sample skeletons."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..skeleton import BONES, JOINT_NAMES, LEFT_JOINTS, RIGHT_JOINTS, bone_lengths
from .poseset import PoseSet
from .errors import DataError
from .load import load_splits, load_test_set
from .spec import parse_spec

BONE_NAMES = tuple(f"{JOINT_NAMES[p]}-{JOINT_NAMES[c]}" for p, c in BONES)


def bone_length_stats(poses_3d: np.ndarray) -> dict:
    """{bone name: {'mean': mm, 'std': mm}} over all frames."""
    if len(poses_3d) == 0:
        return {}
    lengths = bone_lengths(np.asarray(poses_3d, dtype=np.float64))
    return {name: {"mean": round(float(m), 1), "std": round(float(s), 1)}
            for name, m, s in zip(BONE_NAMES, lengths.mean(0), lengths.std(0))}


def describe(ps: PoseSet) -> dict:
    """Frames, subjects and actions (with frame counts), bone lengths (mm) and the 2D scale of one PoseSet."""
    info = ps.summary()
    seq = ps.meta.get("per_frame", {}).get("sequence")
    info["sequences"] = int(len(np.unique(seq))) if seq is not None else None
    info["bone_lengths_mm"] = bone_length_stats(ps.poses_3d)
    info["scale"] = ps.meta.get("scale")
    info["mean_root_head_2d"] = (round(float(np.linalg.norm(ps.keypoints_2d[:, 10] - ps.keypoints_2d[:, 0],
                                                             axis=-1).mean()), 4) if len(ps) else None)
    return info


def summarise(spec: str, seed: int = 0, max_frames: int | None = None) -> dict:
    """Summary of a DATA spec: {'spec', 'source', 'splits': {split: describe(...)}, 'meta': {...}}.

    ``max_frames`` caps each split (even subsample) to keep the call quick. For ``3dhp:`` (test only)
    the test split alone is described, normalised with its own scale."""
    source, _ = parse_spec(spec)
    if source == "3dhp":
        splits = {"test": load_test_set(spec, None, seed=seed, max_test=max_frames)}
    else:
        splits = load_splits(spec, seed=seed, max_train=max_frames, max_test=max_frames)
    first = next(iter(splits.values()))
    keep = ("source", "split_rule", "test_styles", "test_subjects", "subjects", "fps", "detections",
            "poses_3d_key", "camera_source", "augment_bones", "views")
    return {"spec": spec, "source": source,
            "splits": {k: describe(v) for k, v in splits.items()},
            "meta": {k: first.meta[k] for k in keep if k in first.meta}}


def format_summary(info: dict) -> str:
    """Human-readable text for :func:`summarise` output."""
    lines = [f"DATA {info['spec']} (source: {info['source']})"]
    for k, v in info.get("meta", {}).items():
        lines.append(f"  {k}: {v}")
    for split, d in info["splits"].items():
        lines.append(f"[{split}] {d['frames']} frames, {d.get('sequences')} sequences, scale {d['scale']:.4g}")
        lines.append(f"  subjects ({len(d['subjects'])}): " + ", ".join(f"{k} {v}" for k, v in d["subjects"].items()))
        lines.append(f"  actions ({len(d['actions'])}): " + ", ".join(f"{k} {v}" for k, v in d["actions"].items()))
        lines.append("  bone lengths mm (mean +- std): " + ", ".join(
            f"{k} {v['mean']:.0f}+-{v['std']:.0f}" for k, v in d["bone_lengths_mm"].items()))
    return "\n".join(lines)


def _atomic_savefig(fig, path) -> Path:
    from ..io import atomic_savefig
    return atomic_savefig(fig, path, dpi=110, bbox_inches="tight")


def _bone_colour(p, c):
    if c in LEFT_JOINTS:
        return "tab:blue"
    if c in RIGHT_JOINTS:
        return "tab:red"
    return "0.3"


def save_sample_figure(poseset: PoseSet, path, n: int = 6) -> Path:
    """Save ``n`` evenly spaced samples of ``poseset`` as 3D skeletons (top row, camera frame, mm) with
    their 2D inputs (bottom row). Matplotlib Agg backend; written atomically. Returns the path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if len(poseset) == 0:
        raise DataError(f"save_sample_figure: PoseSet {poseset.name!r} is empty")
    n = max(1, min(n, len(poseset)))
    idx = np.linspace(0, len(poseset) - 1, n).round().astype(int)
    fig = plt.figure(figsize=(2.8 * n, 6.0))
    for k, i in enumerate(idx):
        pose = poseset.poses_3d[i]
        ax = fig.add_subplot(2, n, k + 1, projection="3d")
        for p, c in BONES:  # camera frame: x right, y down, z forward -> plot (x, z, -y)
            ax.plot([pose[p, 0], pose[c, 0]], [pose[p, 2], pose[c, 2]], [-pose[p, 1], -pose[c, 1]],
                    color=_bone_colour(p, c), lw=2)
        r = 950
        ax.set_xlim(-r, r), ax.set_ylim(-r, r), ax.set_zlim(-r, r)
        ax.set_box_aspect((1, 1, 1))
        ax.set_xticklabels([]), ax.set_yticklabels([]), ax.set_zticklabels([])
        ax.view_init(elev=10, azim=-80)
        ax.set_title(f"{poseset.subjects[i]}\n{poseset.actions[i]}", fontsize=8)
        ax2 = fig.add_subplot(2, n, n + k + 1)
        kp = poseset.keypoints_2d[i]
        for p, c in BONES:
            ax2.plot([kp[p, 0], kp[c, 0]], [kp[p, 1], kp[c, 1]], color=_bone_colour(p, c), lw=2)
        ax2.set_xlim(-0.45, 0.45), ax2.set_ylim(0.45, -0.45)
        ax2.set_aspect("equal")
        ax2.tick_params(labelsize=6)
    fig.suptitle(f"{poseset.name}: 3D ground truth (mm, camera frame) and 2D inputs (model space); "
                 f"left = blue, right = red", fontsize=9)
    try:
        return _atomic_savefig(fig, path)
    finally:
        plt.close(fig)


def save_plausibility_figure(stats_by_name: dict, path) -> Path:
    """Box plots comparing :func:`itespy.data.synthetic.plausibility_stats` outputs, e.g.
    ``{'synthetic': stats(syn), 'Bandai': stats(bandai)}``: one panel per ratio and per angle."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = list(stats_by_name)
    first = stats_by_name[names[0]]
    panels = [("ratios", k) for k in first["ratios"]] + [("angles", k) for k in first["angles"]]
    cols = 5
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.6 * rows))
    for ax, (group, key) in zip(axes.ravel(), panels):
        ax.boxplot([stats_by_name[nm][group][key] for nm in names], whis=(1, 99), showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names, fontsize=7)
        ax.set_title(key + (" (deg)" if group == "angles" else ""), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.suptitle("Body proportions and joint angles (whiskers: 1st-99th percentile)", fontsize=9)
    fig.tight_layout()
    try:
        return _atomic_savefig(fig, path)
    finally:
        plt.close(fig)
