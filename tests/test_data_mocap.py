"""Mocap npz loader, BVH parser + FK (vs Bandai's expected output), bone augmentation, clip splits."""
import shutil

import numpy as np
import pytest

from itespy.data import DataError, DataNotFoundError, load_splits
from itespy.data import mocap
from itespy.data.synthetic import generate
from itespy.skeleton import bone_lengths

BVH_TOLERANCE_MM = 0.1  # README: ~1e-3 mm achievable; compare at 0.1 mm


def _facing_ok(poses):
    fwd = np.cross(poses[:, 8] - poses[:, 0], poses[:, 1] - poses[:, 4])
    return float((((poses[:, 9] - poses[:, 8]) * fwd).sum(-1) > 0).mean())


def _write_npz(path, n_clips=6, clip_len=12, **override):
    d = generate(n_subjects=2, clips_per_subject=n_clips // 2, clip_len=clip_len, seed=0)
    seq_names, clip = np.unique(d["sequence"], return_inverse=True)
    styles = np.array(["normal", "feminine", "active"] * n_clips)[:n_clips]
    arrays = dict(positions=d["positions"], clip=clip.astype(np.int32), frame=d["frame"].astype(np.int32),
                  clip_names=seq_names, clip_actor=styles, clip_action=np.array(["walk"] * n_clips),
                  joint_names=np.array(mocap.JOINT_NAMES), fps=np.int64(25))
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


# ------------------------------------------------------------------------------------------ BVH
def test_bvh_matches_expected_positions(bandai_dir):
    files = sorted((bandai_dir / "bvh").glob("*.bvh"))
    assert len(files) == 4
    ours = mocap.convert_bvh_files(files)
    exp = np.load(bandai_dir / "bvh_expected.npz")
    assert ours["positions"].shape == exp["positions"].shape == (499, 17, 3)
    err = np.abs(ours["positions"].astype(np.float64) - exp["positions"]).max()
    print(f"BVH max abs error vs bvh_expected.npz: {err:.2e} mm")
    assert err < BVH_TOLERANCE_MM
    for key in ("clip", "frame", "clip_names", "clip_actor", "clip_action", "joint_names"):
        np.testing.assert_array_equal(ours[key], exp[key])
    assert int(ours["fps"]) == int(exp["fps"]) == 30
    # the 10 fps rows of the big npz are every 3rd row of the 30 fps conversion
    big = np.load(bandai_dir / "bandai_h36m17.npz")
    names = list(big["clip_names"])
    for ci, name in enumerate(exp["clip_names"]):
        rows = big["clip"] == names.index(name)
        np.testing.assert_allclose(big["positions"][rows], ours["positions"][ours["clip"] == ci][::3], atol=1e-3)
    # joint_Root translation clip (walk_normal_002) moves forward; raise-up-left-hand lifts the LWrist
    raise_clip = ours["positions"][ours["clip"] == 2]
    assert raise_clip[:, 13, 2].max() > 1400 and raise_clip[:, 16, 2].max() < 1000
    assert _facing_ok(ours["positions"]) > 0.99


def test_bvh_dir_spec_caches_atomically(bandai_dir, tmp_path):
    src = tmp_path / "bvh"
    src.mkdir()
    for name in ("dataset-1_walk_normal_002.bvh", "dataset-2_raise-up-left-hand_normal_013.bvh",
                 "dataset-2_run_active_048.bvh"):
        shutil.copy(bandai_dir / "bvh" / name, src / name)
    cache = tmp_path / "cache"
    first = mocap.load_bvh_dir(src, cache_dir=cache)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and not first["from_cache"]
    second = mocap.load_bvh_dir(src, cache_dir=cache)
    assert second["from_cache"]
    np.testing.assert_array_equal(first["positions"], second["positions"])
    splits = load_splits(f"bvh:{src}", cache_dir=str(cache))
    tr, te = splits["train"], splits["test"]
    assert len(tr) + len(te) == 31 + 50 + 60
    assert not set(tr.meta["per_frame"]["sequence"]) & set(te.meta["per_frame"]["sequence"])  # split by clip
    # default cache location DIR/.itespy_cache
    mocap.load_bvh_dir(src)
    assert len(list((src / ".itespy_cache").glob("bvh_*.npz"))) == 1
    assert not list(cache.glob(".*tmp"))
    # a folder marked read-only gets no cache (even when running as root), only a warning
    ro = tmp_path / "ro"
    shutil.copytree(src, ro, ignore=shutil.ignore_patterns(".itespy_cache"))
    ro.chmod(0o555)
    try:
        with pytest.warns(UserWarning, match="read-only"):
            out = mocap.load_bvh_dir(ro)
        assert len(out["positions"]) == 141 and not (ro / ".itespy_cache").exists()
    finally:
        ro.chmod(0o755)


def _bvh_text(bandai_dir):
    return (bandai_dir / "bvh" / "dataset-1_walk_normal_002.bvh").read_text()


def test_bvh_errors(bandai_dir, tmp_path):
    text = _bvh_text(bandai_dir)
    truncated = tmp_path / "t.bvh"
    truncated.write_text(text[: int(len(text) * 0.8)])
    with pytest.raises(DataError, match="truncated"):
        mocap.parse_bvh(truncated)
    norig = tmp_path / "n.bvh"
    norig.write_text(text.replace("UpperLeg_R", "Thigh_R"))
    with pytest.raises(DataError, match="UpperLeg_R"):
        mocap.bvh_to_h36m(mocap.parse_bvh(norig))
    nomotion = tmp_path / "m.bvh"
    nomotion.write_text(text.split("MOTION")[0])
    with pytest.raises(DataError, match="MOTION"):
        mocap.parse_bvh(nomotion)
    with pytest.raises(DataNotFoundError):
        load_splits(f"bvh:{tmp_path / 'nope'}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no \\*.bvh"):
        load_splits(f"bvh:{empty}")


# ------------------------------------------------------------------------------------------ npz
def test_npz_validation_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_splits(f"mocap:{tmp_path / 'missing.npz'}")
    p = _write_npz(tmp_path / "nokey.npz", clip_actor=None)
    with pytest.raises(DataError, match="clip_actor"):
        mocap.load_mocap_npz(p)
    d = generate(n_subjects=2, clips_per_subject=3, clip_len=12, seed=0)
    p = _write_npz(tmp_path / "16.npz", positions=d["positions"][:, :16])
    with pytest.raises(DataError, match="16 joints"):
        mocap.load_mocap_npz(p)
    bad = d["positions"].copy()
    bad[5, 3, 1] = np.nan
    p = _write_npz(tmp_path / "nan.npz", positions=bad)
    with pytest.raises(DataError, match="NaN"):
        mocap.load_mocap_npz(p)
    p = _write_npz(tmp_path / "clip.npz", clip=np.full(len(d["positions"]), 99, dtype=np.int32))
    with pytest.raises(DataError, match="outside"):
        mocap.load_mocap_npz(p)
    p = _write_npz(tmp_path / "order.npz", joint_names=np.array(mocap.JOINT_NAMES[::-1]))
    with pytest.raises(DataError, match="joint_names"):
        mocap.load_mocap_npz(p)
    p = _write_npz(tmp_path / "ok.npz")
    with pytest.raises(DataError, match="fewer than the 20 needed"):
        load_splits(f"mocap:{p}", min_clip_frames=20)
    notnpz = tmp_path / "x.npz"
    notnpz.write_text("hello")
    with pytest.raises(DataError, match="cannot be read"):
        mocap.load_mocap_npz(notnpz)


def test_small_npz_split_by_style_and_augmentation(tmp_path):
    p = _write_npz(tmp_path / "ok.npz", n_clips=6, clip_len=12)
    s = load_splits(f"mocap:{p}", seed=3)
    assert set(s["test"].subjects) == {"feminine"} and "feminine" not in set(s["train"].subjects)
    assert len(s["train"]) == 4 * 12 and len(s["test"]) == 2 * 12
    again = load_splits(f"mocap:{p}", seed=3)
    np.testing.assert_array_equal(s["train"].keypoints_2d, again["train"].keypoints_2d)
    other = load_splits(f"mocap:{p}", seed=4)
    assert np.abs(other["train"].poses_3d - s["train"].poses_3d).max() > 1.0


def test_camera_height_option_raises_the_virtual_cameras(tmp_path):
    p = _write_npz(tmp_path / "ok.npz", n_clips=6, clip_len=12)
    raw = mocap.mocap_raw_splits(p, seed=3, camera_height_mm=(3000.0, 4000.0))
    heights = [cam["centre_mm"][2] for cam in raw["train"].meta["cameras"]]
    assert all(3000.0 <= h <= 4000.0 for h in heights), heights
    default = mocap.mocap_raw_splits(p, seed=3)
    assert all(1000.0 <= cam["centre_mm"][2] <= 1800.0 for cam in default["train"].meta["cameras"])


# ------------------------------------------------------------------------------------------ augmentation
def test_rescale_bones_keeps_directions():
    d = generate(n_subjects=2, clips_per_subject=2, clip_len=10, seed=0)
    pos = d["positions"].astype(np.float64)
    rng = np.random.default_rng(0)
    f = mocap.bone_length_factors(len(pos), rng)
    out = mocap.rescale_bones(pos, f)
    np.testing.assert_allclose(bone_lengths(out), bone_lengths(pos) * f[:, 1:], rtol=1e-6)
    for p, c in mocap.BONES:
        u = (out[:, c] - out[:, p]) / np.linalg.norm(out[:, c] - out[:, p], axis=-1, keepdims=True)
        v = (pos[:, c] - pos[:, p]) / np.linalg.norm(pos[:, c] - pos[:, p], axis=-1, keepdims=True)
        np.testing.assert_allclose(u, v, atol=1e-9)
    np.testing.assert_array_equal(out[:, 0], pos[:, 0])
    big = mocap.bone_length_factors(4000, np.random.default_rng(1))
    assert 1.2 < np.exp(np.log(big[:, [1, 4]]).mean()) < 1.45  # hips widened on average
    assert 0.03 < np.log(big[:, 2]).std() < 0.12  # thigh spread
    aug = mocap.augment_bone_lengths(pos, d["sequence"], np.random.default_rng(2))
    bl = bone_lengths(aug.astype(np.float64))
    for seq in np.unique(d["sequence"]):  # one factor set per sequence
        assert bl[d["sequence"] == seq].std(0).max() < 0.05


# ------------------------------------------------------------------------------------------ Bandai
def test_bandai_splits_by_style(bandai_dir):
    s = load_splits(f"mocap:{bandai_dir / 'bandai_h36m17.npz'}", seed=0, max_train=6000, max_test=3000)
    tr, te = s["train"], s["test"]
    assert (len(tr), len(te)) == (6000, 3000)
    assert set(te.subjects) == {"feminine"} and "feminine" not in set(tr.subjects)
    assert te.meta["test_clips"] == 417 and te.meta["train_clips"] == 3076 - 417
    assert not set(tr.meta["per_frame"]["sequence"]) & set(te.meta["per_frame"]["sequence"])
    # both splits augmented with one body-shape distribution (no train/test shape shift); the test clips get
    # their own factors, so their bone lengths differ from the real skeleton's but match the training split's
    te_bl, tr_bl = bone_lengths(te.poses_3d.astype(np.float64)), bone_lengths(tr.poses_3d.astype(np.float64))
    assert te_bl[:, 1].std() > 10 and tr_bl[:, 1].std() > 10
    hip_te, hip_tr = te_bl[:, 0].mean(), tr_bl[:, 0].mean()  # Hip-RHip: README 68.3 mm, widened ~1.3x
    assert hip_te > 80 and hip_tr > 80 and abs(hip_te - hip_tr) < 0.1 * hip_tr
    real = load_splits(f"mocap:{bandai_dir / 'bandai_h36m17.npz'}", seed=0, max_test=300,
                       augment_bones=False)["test"]  # without augmentation: the README's skeleton
    real_bl = bone_lengths(real.poses_3d.astype(np.float64))
    np.testing.assert_allclose(real_bl[:, 1], 390.8, atol=0.3)  # RHip-RKnee
    np.testing.assert_allclose(real_bl[:, 0], 68.3, atol=0.3)  # Hip-RHip
    assert _facing_ok(te.poses_3d) > 0.98
    assert abs(np.linalg.norm(tr.keypoints_2d[:, 10], axis=-1).mean() - 0.2) < 0.01
