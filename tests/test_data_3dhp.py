"""MPI-INF-3DHP test set on generated annot_data.mat files in both MAT flavours (HDF5 v7.3 via h5py,
classic MAT via scipy.io)."""
import h5py
import numpy as np
import pytest
import scipy.io

from itespy.data import DataError, DataNotFoundError, load_splits, load_test_set
from itespy.data import mpi3dhp
from itespy.data.cameras import MPI3DHP_INTRINSICS
from itespy.data.synthetic import generate

N = 12  # frames per sequence
INVALID = (2, 7)  # frame indices marked invalid (and filled with NaN)
HDF5_SEQS = ("TS1", "TS2", "TS3", "TS4")


def _from_h36m(a):
    """H36M-17 order -> 3DHP test order (inverse of TO_H36M)."""
    out = np.empty_like(a)
    out[..., list(mpi3dhp.TO_H36M), :] = a
    return out


def make_3dhp_dir(root, sequences=mpi3dhp.SEQUENCES, drop_key=None, joints=17):
    """Returns {seq: dict(cam3d_h36m (N,17,3) mm camera frame, univ (N,17,3), px (N,17,2), activity)}."""
    d = generate(n_subjects=2, clips_per_subject=3, clip_len=N, seed=0)
    truth = {}
    for si, seq in enumerate(sequences):
        world = d["positions"][si * N:(si + 1) * N].astype(np.float64)
        cam = np.stack([world[..., 0] - world[:, :1, 0], -(world[..., 2] - 900), world[..., 1] - world[:, :1, 1] + 4000], -1)
        intr = MPI3DHP_INTRINSICS["studio" if seq in HDF5_SEQS else "outdoor"]
        px = cam[..., :2] / cam[..., 2:] * np.array(intr["focal_length"]) + np.array(intr["center"])
        univ = cam[:, :1] + (cam - cam[:, :1]) * 1.05
        valid = np.ones(N)
        valid[list(INVALID)] = 0
        activity = (np.arange(N) % 7) + 1
        truth[seq] = dict(cam3d=cam, univ=univ, px=px, activity=activity, valid=valid.astype(bool))
        a2, a3, u3 = (_from_h36m(x.copy()) for x in (px, cam, univ))
        for arr in (a2, a3, u3):
            arr[list(INVALID)] = np.nan
        if joints != 17:
            a2, a3, u3 = a2[:, :joints], a3[:, :joints], u3[:, :joints]
        folder = root / seq
        folder.mkdir(parents=True)
        data = {"annot2": a2, "annot3": a3, "univ_annot3": u3, "valid_frame": valid, "activity_annotation": activity}
        if drop_key:
            data.pop(drop_key)
        if seq in HDF5_SEQS:  # MATLAB v7.3: h5py reads (N, 1, 17, D) and (N, 1)
            with h5py.File(folder / "annot_data.mat", "w") as f:
                for k, v in data.items():
                    f[k] = v[:, None] if v.ndim == 3 else v[:, None].astype(np.float64)
        else:  # classic MAT: MATLAB layout (D, 17, 1, N) and (1, N)
            mat = {k: (np.transpose(v, (2, 1, 0))[:, :, None, :] if v.ndim == 3 else v[None, :].astype(np.float64))
                   for k, v in data.items()}
            scipy.io.savemat(folder / "annot_data.mat", mat)
    return truth


@pytest.fixture(scope="module")
def hp_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("3dhp") / "mpi_inf_3dhp_test_set"
    root.mkdir()
    return root, make_3dhp_dir(root)


def test_load_both_flavours_joint_map_and_valid_frames(hp_dir):
    root, truth = hp_dir
    ps = load_test_set(f"3dhp:{root}", scale=1.25)
    keep = N - len(INVALID)
    assert len(ps) == 6 * keep
    assert ps.meta["scale"] == 1.25 and ps.meta["scale_source"] == "given"
    assert ps.meta["mat_flavours"] == {"TS1": "hdf5", "TS2": "hdf5", "TS3": "hdf5", "TS4": "hdf5",
                                       "TS5": "mat", "TS6": "mat"}
    assert list(np.unique(ps.subjects)) == list(mpi3dhp.SEQUENCES)
    pf = ps.meta["per_frame"]
    for seq in mpi3dhp.SEQUENCES:
        rows = ps.subjects == seq
        t = truth[seq]
        np.testing.assert_array_equal(pf["frame"][rows], np.flatnonzero(t["valid"]))
        univ = t["univ"][t["valid"]]
        np.testing.assert_allclose(ps.poses_3d[rows], univ - univ[:, :1], atol=1e-3)  # H36M order, mm
        px = t["px"][t["valid"]]
        focal = MPI3DHP_INTRINSICS["studio" if seq in HDF5_SEQS else "outdoor"]["focal_length"]
        np.testing.assert_allclose(pf["focal_px"][rows], np.broadcast_to(focal, (keep, 2)), rtol=1e-6)
        np.testing.assert_allclose(ps.keypoints_2d[rows], (px - px[:, :1]) / np.array(focal) * 1.25, atol=1e-5)
        assert set(ps.actions[rows]) <= set(mpi3dhp.ACTIVITIES.values())
    # left/right kept: H36M LShoulder (11) is 3DHP joint 5
    assert mpi3dhp.TO_H36M[11] == 5 and mpi3dhp.TO_H36M[14] == 2 and mpi3dhp.TO_H36M[10] == 0


def test_parent_folder_real_3d_and_own_scale(hp_dir):
    root, truth = hp_dir
    ps = load_test_set(f"3dhp:{root.parent}", universal=False)  # parent of mpi_inf_3dhp_test_set
    t = truth["TS5"]
    cam = t["cam3d"][t["valid"]]
    np.testing.assert_allclose(ps.poses_3d[ps.subjects == "TS5"], cam - cam[:, :1], atol=1e-3)
    assert "test split itself" in ps.meta["scale_source"]
    assert abs(np.linalg.norm(ps.keypoints_2d[:, 10], axis=-1).mean() - 0.2) < 1e-4


def test_3dhp_is_test_only(hp_dir):
    root, _ = hp_dir
    with pytest.raises(DataError, match="test-only"):
        load_splits(f"3dhp:{root}")


def test_3dhp_errors(tmp_path):
    with pytest.raises(DataNotFoundError):
        load_test_set(f"3dhp:{tmp_path / 'nope'}")
    partial = tmp_path / "partial"
    partial.mkdir()
    make_3dhp_dir(partial, sequences=("TS1", "TS5"))
    with pytest.raises(FileNotFoundError, match="TS2/annot_data.mat"):
        load_test_set(f"3dhp:{partial}")
    ok = load_test_set(f"3dhp:{partial}", sequences=("TS1", "TS5"))
    assert set(ok.subjects) == {"TS1", "TS5"}
    for seqs in (("TS1",), ("TS5",)):  # both flavours
        nokey = tmp_path / f"nokey{seqs[0]}"
        nokey.mkdir()
        make_3dhp_dir(nokey, sequences=seqs, drop_key="univ_annot3")
        with pytest.raises(DataError, match="univ_annot3"):
            load_test_set(f"3dhp:{nokey}", sequences=seqs)
        j16 = tmp_path / f"j16{seqs[0]}"
        j16.mkdir()
        make_3dhp_dir(j16, sequences=seqs, joints=16)
        with pytest.raises(DataError, match="17 joints"):
            load_test_set(f"3dhp:{j16}", sequences=seqs)
    garbage = tmp_path / "garbage" / "TS1"
    garbage.mkdir(parents=True)
    (garbage / "annot_data.mat").write_text("not a mat file")
    with pytest.raises(DataError, match="MATLAB"):
        load_test_set(f"3dhp:{garbage.parent}", sequences=("TS1",))
