"""Synthetic generator: sizes, splits, determinism, smoothness, plausibility (vs Bandai when present)."""
import time

import numpy as np
import pytest

from itespy.data import load_splits
from itespy.data import synthetic as syn
from itespy.geometry import TARGET_ROOT_HEAD_2D
from itespy.skeleton import bone_lengths


@pytest.fixture(scope="module")
def splits():
    return load_splits("synthetic", seed=0)


@pytest.fixture(scope="module")
def world():
    return syn.generate(n_subjects=10, clips_per_subject=14, clip_len=60, seed=1)


def _facing_ok(poses):
    """Fraction of frames whose nose is in front of the thorax (forward = trunk-up x subject-right)."""
    fwd = np.cross(poses[:, 8] - poses[:, 0], poses[:, 1] - poses[:, 4])
    return float(((poses[:, 9] - poses[:, 8]) * fwd).sum(-1).__gt__(0).mean())


def test_default_sizes_split_by_subject_and_normalisation(splits):
    tr, te = splits["train"], splits["test"]
    assert (len(tr), len(te)) == (20000, 5000)
    assert tr.keypoints_2d.dtype == np.float32 and tr.poses_3d.dtype == np.float32
    assert tr.keypoints_2d.shape == (20000, 17, 2) and te.poses_3d.shape == (5000, 17, 3)
    assert set(tr.subjects) & set(te.subjects) == set()
    assert set(te.subjects) == {"syn09", "syn10"}
    assert set(syn.FAMILIES) == set(tr.actions) == set(te.actions)
    # root-centred 3D (mm) and 2D; 2D scaled so the mean pelvis-head length is 1/5 on train
    assert np.abs(tr.poses_3d[:, 0]).max() == 0 and np.abs(tr.keypoints_2d[:, 0]).max() == 0
    mean_len = np.linalg.norm(tr.keypoints_2d[:, 10] - tr.keypoints_2d[:, 0], axis=-1).mean()
    assert mean_len == pytest.approx(TARGET_ROOT_HEAD_2D, rel=1e-4)
    assert tr.meta["scale"] == te.meta["scale"] > 0
    # 2D input is the perspective projection of the camera-frame 3D (f, c cancel after root-centring)
    pf = tr.meta["per_frame"]
    cam = tr.poses_3d.astype(np.float64) + pf["root_cam_mm"][:, None]
    proj = cam[..., :2] / cam[..., 2:] * pf["focal_px"][:, None]
    expect = (proj - proj[:, :1]) / pf["focal_px"][:, None] * tr.meta["scale"]
    np.testing.assert_allclose(tr.keypoints_2d, expect, atol=1e-5)
    # people are 1.5-2 m tall in mm, and facing the right way (no mirroring)
    assert 1300 < np.linalg.norm(tr.poses_3d[:, 10] - tr.poses_3d[:, 3], axis=-1).max() < 2200
    assert _facing_ok(tr.poses_3d) > 0.99


def test_deterministic_per_seed_and_subsampling(splits):
    again = load_splits("synthetic", seed=0, max_train=1000, max_test=300)
    idx = np.floor(np.arange(1000) * 20).astype(int)
    np.testing.assert_array_equal(again["train"].keypoints_2d, splits["train"].keypoints_2d[idx])
    assert again["train"].meta["scale"] == splits["train"].meta["scale"]  # scale independent of max_train
    assert len(again["test"]) == 300 and set(again["test"].subjects) == {"syn09", "syn10"}
    other = syn.generate(n_subjects=4, clips_per_subject=7, clip_len=20, seed=5)
    same = syn.generate(n_subjects=4, clips_per_subject=7, clip_len=20, seed=5)
    diff = syn.generate(n_subjects=4, clips_per_subject=7, clip_len=20, seed=6)
    np.testing.assert_array_equal(other["positions"], same["positions"])
    assert np.abs(other["positions"] - diff["positions"]).max() > 100


def test_stride_keeps_every_kth_frame_per_sequence():
    s = load_splits("synthetic", seed=0, stride=4)
    assert len(s["train"]) == 20000 // 4
    assert (s["train"].meta["per_frame"]["frame"] % 4 == 0).all()


def test_generation_speed():
    t0 = time.perf_counter()
    d = syn.generate(n_subjects=10, clips_per_subject=50, clip_len=100, seed=0)
    elapsed = time.perf_counter() - t0
    assert d["positions"].shape == (50000, 17, 3)
    assert elapsed < 10.0, f"50k frames took {elapsed:.1f} s"


def test_smooth_sequences_constant_bones_and_ground(world):
    pos = world["positions"].astype(np.float64).reshape(-1, 60, 17, 3)
    rel = pos - pos[:, :, :1]
    step = np.linalg.norm(np.diff(rel, axis=1), axis=-1)  # mm per frame at 25 fps
    # Bandai mocap: 99th percentile 2.4 m/s, max 7.5 m/s relative to the root; white noise would be far above
    assert np.percentile(step, 99) < 130 and step.max() < 300
    bl = bone_lengths(pos)
    assert bl.std(axis=1).max() < 1e-2  # per clip, per bone: rigid bones
    lowest = pos[..., [3, 6], 2].min(-1)  # lowest ankle sits at ankle height (feet on the ground)
    assert np.abs(lowest - lowest[:, :1]).max() < 1e-3 and 50 < lowest.min() < 100
    assert _facing_ok(world["positions"]) > 0.99


def test_plausible_without_reference(world):
    stats = syn.plausibility_stats(world["positions"])
    for name, (lo, hi) in syn.RATIO_BOUNDS.items():
        r = stats["ratios"][name]
        assert lo <= r.min() and r.max() <= hi, (name, r.min(), r.max())
    for name, (lo, hi) in syn.ANGLE_BOUNDS.items():
        a = stats["angles"][name]
        assert lo <= a.min() and a.max() <= hi, (name, a.min(), a.max())
    # not a statue: knees, elbows, hips and shoulders move through a real range
    for name, need in (("knee_flexion", 80), ("elbow_flexion", 80), ("hip_flexion", 70),
                       ("shoulder_elevation", 100)):
        assert np.percentile(stats["angles"][name], 99) > need, name


def test_plausibility_stats_detects_implausible_poses(world):
    pose = world["positions"][:50].copy()
    bad = pose.copy()
    bad[:, 3] = bad[:, 2] + 2.5 * (bad[:, 2] - bad[:, 1])  # knee bent backwards: shank along the thigh, 2.5x
    s_bad = syn.plausibility_stats(bad)["ratios"]["thigh/shank"]
    assert (s_bad < syn.RATIO_BOUNDS["thigh/shank"][0]).all()
    with pytest.raises(ValueError):
        syn.plausibility_stats(pose[:, :16])


def test_plausibility_against_bandai(bandai_dir):
    """Body proportions: Bandai's ratios lie inside the synthetic body model's spread; joint angles: the
    synthetic range sits inside Bandai's (hip flexion excepted: Bandai has no sitting or squatting)."""
    bandai = np.load(bandai_dir / "bandai_h36m17.npz")["positions"][::5]
    ref = syn.plausibility_stats(bandai)
    bodies = syn.plausibility_stats(syn.generate(n_subjects=100, clips_per_subject=1, clip_len=5, seed=2)["positions"])
    for name in syn.RATIO_NAMES:
        lo, hi = np.percentile(bodies["ratios"][name], [0.5, 99.5])
        assert lo <= np.median(ref["ratios"][name]) <= hi, (name, lo, hi, np.median(ref["ratios"][name]))
    motion = syn.plausibility_stats(syn.generate(seed=0)["positions"])
    for name in syn.ANGLE_NAMES:
        s1, s99 = np.percentile(motion["angles"][name], [1, 99])
        r_lo, r99, r_hi = np.percentile(ref["angles"][name], [0.1, 99, 99.9])
        assert s99 >= 0.5 * r99, (name, s99, r99)  # covers a good part of the real range
        if name == "hip_flexion":
            assert s99 <= syn.ANGLE_BOUNDS[name][1]
            continue
        assert r_lo - 10 <= s1 and s99 <= r_hi + 10, (name, s1, s99, r_lo, r_hi)
