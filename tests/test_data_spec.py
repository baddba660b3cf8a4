"""DATA specs, errors, PoseSet, summaries and figures."""
import numpy as np
import pytest

from itespy.data import (KNOWN_SOURCES, DataError, DataNotFoundError, PoseSet, even_subsample_index, load_splits,
                         load_test_set, parse_spec)
from itespy.data.errors import atomic_save_npz, check_array
from itespy.data.summary import format_summary, save_plausibility_figure, save_sample_figure, summarise


@pytest.fixture(scope="module")
def small():
    return load_splits("synthetic", seed=0, max_train=600, max_test=200)


def test_parse_spec():
    assert KNOWN_SOURCES == ("synthetic", "mocap", "bvh", "h36m", "3dhp")
    assert parse_spec("synthetic") == ("synthetic", None)
    assert parse_spec(" Synthetic ") == ("synthetic", None)
    assert parse_spec("mocap:/a/b.npz") == ("mocap", "/a/b.npz")
    assert parse_spec("bvh:C:/x:y") == ("bvh", "C:/x:y")  # only the first ':' splits
    assert parse_spec("h36m-cpn:/d") == ("h36m-cpn", "/d")
    assert parse_spec("3dhp:~/x")[1].endswith("/x") and "~" not in parse_spec("3dhp:~/x")[1]
    for bad, pattern in (("coco:/x", "Unknown DATA prefix 'coco'"), ("", "non-empty"), ("mocap:", "needs a path"),
                         ("synthetic:/x", "takes no path"), ("h36m", "needs a path")):
        with pytest.raises(DataError, match=pattern):
            parse_spec(bad)
    with pytest.raises(ValueError, match="synthetic \\| mocap:PATH.npz"):  # DataError is a ValueError
        load_splits("nonsense:/x")


def test_missing_paths_raise_one_clear_error(tmp_path):
    for spec in (f"mocap:{tmp_path}/x.npz", f"bvh:{tmp_path}/none", f"h36m:{tmp_path}/none",
                 f"h36m-cpn:{tmp_path}/none"):
        with pytest.raises(DataNotFoundError, match="not found") as info:
            load_splits(spec)
        assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)
        assert "none" in str(info.value) or "x.npz" in str(info.value)
    with pytest.raises(DataError, match="stride"):
        load_splits("synthetic", stride=0)
    with pytest.raises(DataError, match="expected a file"):
        load_splits(f"mocap:{tmp_path}")


def test_poseset_subset_and_validation(small):
    tr = small["train"]
    assert len(tr) == 600
    sub = tr.subset(np.arange(10, 20))
    assert len(sub) == 10 and sub.meta["per_frame"]["camera"].shape == (10,)
    np.testing.assert_array_equal(sub.keypoints_2d, tr.keypoints_2d[10:20])
    np.testing.assert_array_equal(sub.meta["per_frame"]["root_px"], tr.meta["per_frame"]["root_px"][10:20])
    mask = tr.subjects == tr.subjects[0]
    assert len(tr.subset(mask)) == mask.sum() and len(tr.subset(slice(0, 5))) == 5
    assert sub.meta["scale"] == tr.meta["scale"]
    sub.meta["scale"] = -1
    assert tr.meta["scale"] > 0  # meta copied, not shared
    # pixels recoverable from per-frame meta
    pf = tr.meta["per_frame"]
    px = tr.keypoints_2d / tr.meta["scale"] * pf["focal_px"][:, None] + pf["root_px"][:, None]
    assert 0 < px.min() and px.max() < 1000
    with pytest.raises(DataError, match="poses_3d"):
        PoseSet(tr.keypoints_2d, tr.poses_3d[:5], tr.subjects, tr.actions, "bad")
    with pytest.raises(DataError, match="keypoints_2d"):
        PoseSet(tr.keypoints_2d[:, :16], tr.poses_3d, tr.subjects, tr.actions, "bad")
    with pytest.raises(DataError, match="per_frame"):
        PoseSet(tr.keypoints_2d, tr.poses_3d, tr.subjects, tr.actions, "bad", {"per_frame": {"x": np.zeros(3)}})


def test_even_subsample_and_checks(tmp_path):
    idx = even_subsample_index(100, 10)
    np.testing.assert_array_equal(idx, np.arange(0, 100, 10))
    assert len(even_subsample_index(7, None)) == 7 and len(even_subsample_index(7, 50)) == 7
    assert len(np.unique(even_subsample_index(1000, 999))) == 999
    with pytest.raises(DataError, match=r"expected shape \(N, 17, 3\).*16 joints"):
        check_array(np.zeros((4, 16, 3)), "poses", (None, 17, 3))
    with pytest.raises(DataError, match="inf"):
        check_array(np.array([[1.0, np.inf]]), "x", (None, 2))
    atomic_save_npz(tmp_path / "c" / "a.npz", x=np.arange(3))
    assert np.load(tmp_path / "c" / "a.npz")["x"].tolist() == [0, 1, 2]
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["a.npz"]


def test_load_test_set_with_given_scale(small):
    te = load_test_set("synthetic", scale=2 * small["train"].meta["scale"], max_test=200)
    np.testing.assert_allclose(te.keypoints_2d, 2 * small["test"].keypoints_2d, rtol=1e-5, atol=1e-7)
    own = load_test_set("synthetic", max_test=200)
    assert own.meta["scale"] == small["train"].meta["scale"] and own.meta["scale_source"] == "train split"
    with pytest.raises(DataError, match="scale"):
        load_test_set("synthetic", scale=-1.0)


def test_summary_and_figures(tmp_path, small):
    info = summarise("synthetic", max_frames=400)
    assert info["source"] == "synthetic" and set(info["splits"]) == {"train", "test"}
    tr = info["splits"]["train"]
    assert tr["frames"] == 400 and len(tr["subjects"]) == 8 and len(tr["actions"]) == 7
    thigh = tr["bone_lengths_mm"]["RHip-RKnee"]["mean"]
    assert 350 < thigh < 500
    text = format_summary(info)
    assert "RHip-RKnee" in text and "[test]" in text
    out = save_sample_figure(small["test"], tmp_path / "fig" / "samples.png", n=4)
    assert out.exists() and out.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in out.parent.iterdir()) == ["samples.png"]  # no temp files left
    from itespy.data.synthetic import plausibility_stats
    p = save_plausibility_figure({"a": plausibility_stats(small["train"].poses_3d),
                                  "b": plausibility_stats(small["test"].poses_3d)}, tmp_path / "plaus.png")
    assert p.stat().st_size > 1000
    with pytest.raises(DataError, match="empty"):
        save_sample_figure(small["test"].subset(np.arange(0)), tmp_path / "x.png")
