"""itespy.viz training diagnostics (notebooks 00, 03, 04): loss curves, error bars, joint matrices, the
display scaling of predictions and the body-orientation helpers."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from itespy import metrics, skeleton, viz  # noqa: E402

HISTORY = [{"stage": "teacher", "epoch": e, "loss_total": 6.0 / e, "loss_rep": 1.0 / e, "loss_ric": 1.0 / e ** 2}
           for e in (1, 2, 3)]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def poses_mm(n=6, seed=0):
    rng = np.random.default_rng(seed)
    base = viz.example_pose("mm")
    rots = [viz.euler_rotation(yaw) for yaw in rng.uniform(-180, 180, n)]
    poses = np.stack([viz.rotate_pose(base + rng.normal(0, 20, base.shape), r) for r in rots])
    return poses - poses[:, :1]  # root-centred, like PoseSet.poses_3d


def test_loss_curves_draw_each_term_and_weights(tmp_path):
    fig = viz.plot_loss_curves(HISTORY, path=tmp_path / "curves.png")
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2  # loss_rep, loss_ric (total left out by default)
    assert np.allclose(lines[0].get_ydata(), [1.0, 0.5, 1 / 3]) and list(lines[0].get_xdata()) == [1, 2, 3]
    assert (tmp_path / "curves.png").stat().st_size > 0
    fig = viz.plot_loss_curves(HISTORY, keys=["loss_rep"], weights={"loss_rep": 5.0})
    assert np.allclose(fig.axes[0].get_lines()[0].get_ydata(), [5.0, 2.5, 5 / 3])
    assert "5" in fig.axes[0].get_legend().get_texts()[0].get_text()
    with pytest.raises(ValueError, match="loss_kd"):
        viz.plot_loss_curves(HISTORY, keys=["loss_kd"])
    with pytest.raises(ValueError, match="empty"):
        viz.plot_loss_curves([])


def test_error_bars_per_joint_and_per_action(tmp_path):
    fig = viz.plot_error_bars({"teacher": np.arange(17.0), "student": np.arange(17.0) / 2},
                              path=tmp_path / "joints.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(viz.JOINT_SHORT_NAMES)
    assert len(ax.patches) == 34 and np.isclose(ax.patches[16].get_height(), 16.0)
    assert (tmp_path / "joints.png").exists()
    fig = viz.plot_error_bars({"a": {"walk": 1.0, "sit": 2.0}, "b": {"sit": 4.0, "walk": 3.0}})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["walk", "sit"]
    assert [p.get_height() for p in ax.patches] == [1.0, 2.0, 3.0, 4.0]  # b follows a's label order
    with pytest.raises(ValueError, match="3 values for 17"):
        viz.plot_error_bars({"a": np.arange(17.0), "b": [1, 2, 3]})


def test_joint_matrix_heatmaps(tmp_path):
    adjacency = skeleton.adjacency()
    image = viz.plot_joint_matrix(adjacency, title="A")
    assert np.array_equal(image.get_array(), adjacency)
    fig = viz.joint_matrix_grid([adjacency, torch.eye(17), adjacency / 2], titles=["A", "I", "A/2"], ncols=2,
                                shared_scale=True, path=tmp_path / "grid.png")
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3 and all(im.get_clim() == (0.0, 1.0) for im in images)
    assert (tmp_path / "grid.png").exists()
    with pytest.raises(ValueError, match=r"\(17, 17\)"):
        viz.plot_joint_matrix(np.zeros((16, 16)))


def test_to_ground_truth_scale_matches_the_protocol():
    gt = poses_mm()
    rng = np.random.default_rng(1)
    pred = gt / 900.0 + rng.normal(0, 0.02, gt.shape)  # model units, slightly wrong
    pred[::2] = metrics.depth_flip(pred[::2])  # half of them depth-mirrored
    shown = viz.to_ground_truth_scale(pred, gt)
    per_sample = np.linalg.norm(shown - gt, axis=-1).mean(-1)
    protocol = metrics.flip_best(metrics.mpjpe_scaled, pred, gt)
    assert np.allclose(per_sample, protocol)
    assert np.allclose(shown[:, skeleton.ROOT], 0)
    assert per_sample.max() < 60  # the mirror was undone, the scale recovered
    no_flip = viz.to_ground_truth_scale(pred, gt, flip=False)
    assert np.allclose(np.linalg.norm(no_flip - gt, axis=-1).mean(-1), metrics.mpjpe_scaled(pred, gt))
    with pytest.raises(ValueError, match="differ"):
        viz.to_ground_truth_scale(pred[:2], gt)


def test_body_forward_and_heading():
    pose = viz.example_pose()
    assert np.allclose(viz.body_forward(pose), [[0, 0, -1]], atol=0.1)  # faces the camera
    assert np.allclose(viz.body_heading(pose), 0, atol=5)
    for yaw in (-120.0, -30.0, 45.0, 170.0):
        turned = viz.rotate_pose(pose, viz.euler_rotation(yaw=yaw))
        r = viz.euler_rotation(yaw=yaw)
        assert np.allclose(viz.body_forward(turned), viz.body_forward(pose) @ r.T)  # rotates with the pose
        # euler yaw turns x towards -z: a subject facing -z turns to face -x, i.e. heading -yaw
        heading = viz.body_heading(turned)[0] - viz.body_heading(pose)[0]
        assert np.isclose((heading + yaw + 180) % 360 - 180, 0, atol=1e-6)


def test_direction_concentration():
    assert np.isclose(viz.direction_concentration([[0, 0, 2.0]] * 5), 1.0)
    ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 8, endpoint=False)),
                     np.zeros(8), np.sin(np.linspace(0, 2 * np.pi, 8, endpoint=False))], -1)
    assert viz.direction_concentration(ring) < 1e-9


def _long_run(shift=0.0):
    check = lambda step, m: {"mpjpe": m + shift, "mpjpe_nomirror": m + 40, "mirror": 0.5, "depth_ratio": 0.4 + m / 1000}
    return {"flat": {"val": {"mpjpe": 97.0}}, "gt_depth_ratio": {"val": 0.41},
            "records": [{"stage": "teacher", "step": s, "val": check(s, m)} for s, m in ((500, 80.0), (1000, 90.0))]}


def test_long_run_draws_both_protocols_mirror_share_and_references(tmp_path):
    fig = viz.plot_long_run({"a": _long_run(), "b": _long_run(5.0)}, path=tmp_path / "long.png")
    err, depth = fig.axes[:2]
    assert len(err.lines) == 5 and len(depth.lines) == 5  # 2 runs x (with, without) + the flat pose / GT ratio
    assert list(err.lines[0].get_ydata()) == [80.0, 90.0] and list(err.lines[1].get_ydata()) == [120.0, 130.0]
    assert err.lines[-1].get_ydata()[0] == 97.0 and depth.lines[-1].get_ydata()[0] == 0.41
    assert (tmp_path / "long.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="no runs"):
        viz.plot_long_run({})
    with pytest.raises(ValueError, match="no teacher checks"):
        viz.plot_long_run({"empty": {**_long_run(), "records": []}})


def test_student_gain_draws_each_student_its_teacher_and_the_flat_pose(tmp_path):
    score = lambda m: {"mpjpe": m, "p_mpjpe": m / 2}  # noqa: E731
    run = {"flat": {"test": score(88.0)}, "teacher_kept": {"test": score(50.0)}, "teacher_kept_step": 100,
           "records": [{"stage": "teacher", "step": 100, "test": score(50.0)},
                       {"stage": "student", "step": 10, "test": score(55.0)},
                       {"stage": "student", "step": 20, "test": score(46.0)}]}
    fig = viz.plot_student_gain({"a": run}, path=tmp_path / "gain.png")
    mpjpe, p_mpjpe = fig.axes[:2]
    assert list(mpjpe.lines[0].get_ydata()) == [55.0, 46.0] and list(p_mpjpe.lines[0].get_ydata()) == [27.5, 23.0]
    assert len(mpjpe.lines) == 2 and mpjpe.lines[1].get_ydata()[0] == 50.0  # the student, its teacher
    assert "88.0" in mpjpe.get_title() and "44.0" in p_mpjpe.get_title()  # the flat pose, named
    assert (tmp_path / "gain.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="no runs"):
        viz.plot_student_gain({})
    with pytest.raises(ValueError, match="no student checks"):
        viz.plot_student_gain({"teacher only": {**run, "records": run["records"][:1]}})
