"""Human3.6M (VideoPose3D format) on tiny generated files: loading, world->camera vs the 2D files,
joint order, splits, CPN, stride, errors. The 2D files are made here with an independent camera
implementation (scipy quaternions + the VideoPose3D distortion formula)."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from itespy.data import DataError, DataNotFoundError, load_splits
from itespy.data import h36m
from itespy.data.cameras import H36M_CAMERA_IDS, H36M_EXTRINSICS, H36M_INTRINSICS
from itespy.data.synthetic import generate

SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
ACTIONS = ("Directions", "Sitting 1")
T = 6


def _ref_camera_frame(world_mm, subject, cam):
    q, t = H36M_EXTRINSICS[subject][cam]
    r_c2w = Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix()
    return (world_mm - np.array(t)) @ r_c2w  # = R^T (X - t) for row vectors


def _ref_project(cam_mm, cam):
    intr = H36M_INTRINSICS[H36M_CAMERA_IDS[cam]]
    f, c = np.array(intr["focal_length"]), np.array(intr["center"])
    k, p = np.array(intr["radial_distortion"]), np.array(intr["tangential_distortion"])
    xx = np.clip(cam_mm[..., :2] / cam_mm[..., 2:], -1, 1)
    r2 = (xx ** 2).sum(-1, keepdims=True)
    radial = 1 + (k * np.concatenate([r2, r2 ** 2, r2 ** 3], -1)).sum(-1, keepdims=True)
    tan = (p * xx).sum(-1, keepdims=True)
    return f * (xx * (radial + tan) + p * r2) + c


def make_h36m_dir(root, subjects=SUBJECTS, actions=ACTIONS, extra_2d=0, cpn_noise=2.0, positions_override=None):
    """Write data_3d_h36m.npz, data_2d_h36m_gt.npz and data_2d_h36m_cpn_ft_h36m_dbb.npz. Returns the
    ground truth: {(subject, action): world poses (T,17,3) mm}."""
    d = generate(n_subjects=2, clips_per_subject=len(subjects) * len(actions), clip_len=T, seed=0)
    poses = d["positions"].astype(np.float64).reshape(-1, T, 17, 3)
    poses[..., :2] -= poses[:, :1, :1, :2]  # start at the world origin
    rng = np.random.default_rng(0)
    pos3d, gt2d, cpn2d, truth = {}, {}, {}, {}
    k = 0
    for s in subjects:
        pos3d[s], gt2d[s], cpn2d[s] = {}, {}, {}
        for a in actions:
            full = 1e3 * (1 + rng.random((T, 32, 3)))  # dropped joints: far away (metres), must not leak
            full[:, list(h36m.KEEP_JOINTS)] = poses[k] / 1000.0
            if positions_override is not None:
                full = positions_override(s, a, full)
            pos3d[s][a] = full.astype(np.float32)
            truth[(s, a)] = poses[k]
            views_gt, views_cpn = [], []
            for cam in range(4):
                px = _ref_project(_ref_camera_frame(poses[k], s, cam), cam)
                if extra_2d:
                    px = np.concatenate([px, px[-1:].repeat(extra_2d, 0)])
                views_gt.append(px.astype(np.float32))
                views_cpn.append((px + rng.normal(0, cpn_noise, px.shape)).astype(np.float32))
            gt2d[s][a], cpn2d[s][a] = views_gt, views_cpn
            k += 1
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez_compressed(root / "data_3d_h36m.npz", positions_3d=pos3d)
    np.savez_compressed(root / "data_2d_h36m_gt.npz", positions_2d=gt2d, metadata=meta)
    np.savez_compressed(root / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d=cpn2d, metadata=meta)
    return truth


@pytest.fixture(scope="module")
def h36m_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("h36m")
    truth = make_h36m_dir(root, extra_2d=3)
    return root, truth


def test_load_gt_splits_and_camera_frame(h36m_dir):
    root, truth = h36m_dir
    s = load_splits(f"h36m:{root}")
    tr, te = s["train"], s["test"]
    assert set(tr.subjects) == {"S1", "S5", "S6", "S7", "S8"} and set(te.subjects) == {"S9", "S11"}
    assert len(tr) == 5 * 2 * 4 * T and len(te) == 2 * 2 * 4 * T  # 2D truncated to the 3D length
    assert set(tr.actions) == {"Directions", "Sitting"}
    pf = te.meta["per_frame"]
    for i in (0, 7, len(te) - 1):
        subj, seq, frame, cam = te.subjects[i], pf["sequence"][i], pf["frame"][i], pf["camera"][i]
        action = seq.split("/")[1]
        ref = _ref_camera_frame(truth[(subj, action)][frame], subj, cam)
        np.testing.assert_allclose(te.poses_3d[i], ref - ref[:1], atol=1e-2)  # mm, joint order H36M-17
        np.testing.assert_allclose(pf["root_cam_mm"][i], ref[0], atol=1e-1)
        # keypoints_2d is the normalised GT 2D file: (px - root px) / focal * scale
        px = _ref_project(ref, cam)
        np.testing.assert_allclose(te.keypoints_2d[i], (px - px[:1]) / pf["focal_px"][i] * te.meta["scale"], atol=1e-5)
    # loader cameras reproduce the 2D file from the 3D file (distortion included)
    err = h36m.reprojection_error_px(root, subjects=["S1", "S11"])
    assert max(err.values()) < 0.01
    assert tr.meta["scale"] == te.meta["scale"]
    assert abs(np.linalg.norm(tr.keypoints_2d[:, 10], axis=-1).mean() - 0.2) < 1e-4


def test_cpn_skips_s11_directions_and_uses_detections(h36m_dir):
    root, _ = h36m_dir
    gt = load_splits(f"h36m:{root}")["test"]
    cpn = load_splits(f"h36m-cpn:{root}")["test"]
    assert "S11/Directions/54138969" in set(gt.meta["per_frame"]["sequence"])
    assert not any(q.startswith("S11/Directions/") for q in cpn.meta["per_frame"]["sequence"])
    assert len(cpn) == len(gt) - 4 * T
    assert cpn.meta["detections"] == "cpn" and cpn.name == "h36m-cpn/test"
    keep = ~np.char.startswith(gt.meta["per_frame"]["sequence"].astype(str), "S11/Directions/")
    np.testing.assert_allclose(cpn.poses_3d, gt.poses_3d[keep], atol=1e-4)  # same 3D, noisier 2D
    assert 0 < np.abs(cpn.keypoints_2d - gt.keypoints_2d[keep]).max() < 0.05


def test_stride_and_action_names(h36m_dir, tmp_path):
    root, _ = h36m_dir
    s = load_splits(f"h36m:{root}", stride=2, max_test=10)
    assert len(s["train"]) == 5 * 2 * 4 * (T // 2) and len(s["test"]) == 10
    assert (s["train"].meta["per_frame"]["frame"] % 2 == 0).all()
    assert h36m.action_label("TakingPhoto 1") == "Photo" and h36m.action_label("WalkingDog") == "WalkDog"
    assert h36m.action_label("Sitting 1") == "Sitting"


def test_h36m_errors(tmp_path):
    with pytest.raises(DataNotFoundError):
        load_splits(f"h36m:{tmp_path / 'nope'}")
    with pytest.raises(FileNotFoundError, match="data_3d_h36m.npz"):
        load_splits(f"h36m:{tmp_path}")
    short = tmp_path / "short"
    short.mkdir()
    make_h36m_dir(short, subjects=("S1", "S9"), actions=("Walking",))
    # 3D longer than the 2D: 2D must be at least as long
    d3 = np.load(short / "data_3d_h36m.npz", allow_pickle=True)["positions_3d"].item()
    d3["S1"]["Walking"] = np.concatenate([d3["S1"]["Walking"]] * 2)
    np.savez(short / "data_3d_h36m.npz", positions_3d=d3)
    with pytest.raises(DataError, match="shorter"):
        load_splits(f"h36m:{short}", subjects_train=("S1",), subjects_test=("S9",))
    # wrong joint count in the 3D file
    d3["S1"]["Walking"] = d3["S1"]["Walking"][:T, :17]
    np.savez(short / "data_3d_h36m.npz", positions_3d=d3)
    with pytest.raises(DataError, match="32"):
        load_splits(f"h36m:{short}", subjects_train=("S1",), subjects_test=("S9",))
    # NaN
    d3["S1"]["Walking"] = np.full((T, 32, 3), np.nan, dtype=np.float32)
    np.savez(short / "data_3d_h36m.npz", positions_3d=d3)
    with pytest.raises(DataError, match="NaN"):
        load_splits(f"h36m:{short}", subjects_train=("S1",), subjects_test=("S9",))
    # default subjects missing
    with pytest.raises(DataError, match="S5"):
        load_splits(f"h36m:{short}")
    # wrong key / symmetry
    np.savez(short / "data_3d_h36m.npz", poses=np.zeros(3))
    with pytest.raises(DataError, match="positions_3d"):
        load_splits(f"h36m:{short}")
    sym = tmp_path / "sym"
    sym.mkdir()
    make_h36m_dir(sym, subjects=("S1", "S9"), actions=("Walking",))
    d2 = np.load(sym / "data_2d_h36m_gt.npz", allow_pickle=True)
    np.savez(sym / "data_2d_h36m_gt.npz", positions_2d=d2["positions_2d"].item(),
             metadata={"keypoints_symmetry": [[1, 2, 3, 14, 15, 16], [4, 5, 6, 11, 12, 13]]})
    with pytest.raises(DataError, match="keypoints_symmetry"):
        load_splits(f"h36m:{sym}", subjects_train=("S1",), subjects_test=("S9",))
