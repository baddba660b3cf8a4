"""itespy.viz: widgets follow their sliders, the 2D view is geometry.perspective_project of the rotated
pose, depth flips keep what they promise, static export writes PNGs, bad input fails clearly."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from itespy import geometry, skeleton, viz  # noqa: E402

LEAF_LIMBS = (13, 16, 6, 3, 10)  # forearms, shins, head: the flipped subtree is a single joint
ALL_LIMBS = tuple(j for _, j in viz.FLIP_CHOICES if j is not None)


@pytest.fixture
def pose():
    return viz.example_pose()


@pytest.fixture(scope="module")
def widget():
    seq = np.stack([viz.example_pose(), viz.example_pose() * 0.9])
    return viz.rotation_widget(seq)


def trace(fig, name):
    matches = [t for t in fig.data if t.name == name]
    assert len(matches) == 1, f"expected one trace named {name!r}, got {[t.name for t in fig.data]}"
    return matches[0]


def xy(tr):
    return np.c_[tr.x, tr.y].astype(float)


def xyz(tr):
    return np.c_[tr.x, tr.y, tr.z].astype(float)


def torch_view(pose, yaw, pitch, roll, t):
    """Independent reference: geometry.rotate + geometry.perspective_project in torch."""
    r = torch.as_tensor(viz.euler_rotation(yaw, pitch, roll))
    rotated = geometry.rotate(torch.as_tensor(pose), r)
    return rotated.numpy(), geometry.perspective_project(rotated, t).numpy()


def test_example_pose_is_a_plausible_skeleton():
    pose = viz.example_pose("mm")
    assert pose.shape == (17, 3) and np.allclose(pose[skeleton.ROOT], 0)
    assert np.isclose(np.linalg.norm(viz.example_pose()[skeleton.HEAD]), 1.0)  # pelvis-head = 1 model unit
    lengths = skeleton.bone_lengths(pose)
    for left, right in skeleton.LEFT_RIGHT_PAIRS:  # left/right bones match within 3 %
        bl, br = lengths[left - 1], lengths[right - 1]
        assert abs(bl - br) < 0.03 * max(bl, br)
    assert pose[skeleton.HEAD, 1] < 0 < pose[3, 1]  # y down: head above (negative y), feet below


def test_euler_rotation_is_a_rotation():
    r = viz.euler_rotation(30, -20, 75)
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)
    assert np.allclose(viz.euler_rotation(90) @ [1, 0, 0], [0, 0, -1])  # yaw turns x towards -z


def test_rotation_slider_changes_both_figures(widget):
    widget.update(yaw=0, pitch=0, roll=0, t=5.0, flip=None, sample=0)
    before3d, before2d = xyz(trace(widget.fig3d, "pose")), xy(trace(widget.fig2d, "pose"))
    bones_before = list(trace(widget.fig2d, "pose·left").x)
    widget.sliders["yaw"].value = 40.0  # as if the user dragged the slider
    after3d, after2d = xyz(trace(widget.fig3d, "pose")), xy(trace(widget.fig2d, "pose"))
    assert widget.state["yaw"] == 40.0
    assert not np.allclose(before3d, after3d) and not np.allclose(before2d, after2d)
    assert list(trace(widget.fig2d, "pose·left").x) != bones_before  # the bone lines follow too


@pytest.mark.parametrize("control,value", [("pitch", 25.0), ("roll", -60.0), ("t", 9.0), ("sample", 1)])
def test_2d_view_is_perspective_projection_of_rotated_pose(widget, control, value):
    widget.update(yaw=-35.0, pitch=10.0, roll=5.0, t=5.0, flip=None, sample=0)
    widget.sliders[control].value = value
    st = widget.state
    rotated, expected = torch_view(widget.poses[st["sample"]], st["yaw"], st["pitch"], st["roll"], st["t"])
    assert np.allclose(xyz(trace(widget.fig3d, "pose")), rotated)
    assert np.allclose(xy(trace(widget.fig2d, "pose")), expected)
    assert np.allclose(widget.pose_2d, expected)


def test_orthographic_overlay(widget):
    widget.update(yaw=20.0, t=5.0, flip=None, orthographic=True)
    ortho = trace(widget.fig2d, "orthographic")
    assert ortho.visible
    assert np.allclose(xy(ortho), geometry.orthographic_project(torch.as_tensor(widget.pose_3d), 5.0).numpy())
    widget.update(orthographic=False)
    assert not trace(widget.fig2d, "orthographic").visible


@pytest.mark.parametrize("joint", ALL_LIMBS)
def test_ray_flip_keeps_2d_and_bone_lengths(pose, joint):
    flipped = viz.flip_joint_depth(pose, joint, mode="ray")
    moved = viz.descendants(joint)
    assert np.allclose(viz.project_pose(flipped), viz.project_pose(pose), atol=1e-12)  # same 2D, exactly
    assert np.allclose(skeleton.bone_lengths(flipped), skeleton.bone_lengths(pose), atol=1e-9)
    assert np.abs(flipped[joint, 2] - pose[joint, 2]) > 0.05  # it really moved in depth
    untouched = [j for j in range(17) if j not in moved]
    assert np.array_equal(flipped[untouched], pose[untouched])
    # it moves the joint the same way in depth as the mirror flip does (the two agree only in the
    # orthographic limit: off-axis rays are tilted, so the other intersection is not the mirror image)
    mirrored = viz.flip_joint_depth(pose, joint, mode="mirror")
    assert np.sign(flipped[joint, 2] - pose[joint, 2]) == np.sign(mirrored[joint, 2] - pose[joint, 2])


@pytest.mark.parametrize("joint", ALL_LIMBS)
def test_mirror_flip_keeps_orthographic_2d_but_not_perspective(pose, joint):
    flipped = viz.flip_joint_depth(pose, joint, mode="mirror")
    p = skeleton.PARENTS[joint]
    assert np.isclose(flipped[joint, 2] - pose[p, 2], -(pose[joint, 2] - pose[p, 2]))
    assert np.allclose(skeleton.bone_lengths(flipped), skeleton.bone_lengths(pose))
    assert np.allclose(viz.project_pose(flipped, mode="orthographic"), viz.project_pose(pose, mode="orthographic"))
    assert not np.allclose(viz.project_pose(flipped), viz.project_pose(pose), atol=1e-4)


def test_flip_control_in_widget(widget):
    widget.update(yaw=30.0, pitch=0.0, roll=0.0, t=5.0, flip=None, flip_mode="ray", sample=0)
    before3d, before2d = xyz(trace(widget.fig3d, "pose")), xy(trace(widget.fig2d, "pose"))
    assert not trace(widget.fig3d, "unflipped").visible
    widget.sliders["flip"].value = 13  # left forearm
    assert trace(widget.fig3d, "unflipped").visible
    after3d, after2d = xyz(trace(widget.fig3d, "pose")), xy(trace(widget.fig2d, "pose"))
    assert not np.allclose(before3d, after3d)
    assert np.allclose(before2d, after2d, atol=1e-12)  # ray flip: the image does not change
    assert np.allclose(skeleton.bone_lengths(after3d), skeleton.bone_lengths(before3d))
    widget.sliders["flip_mode"].value = "mirror"
    assert not np.allclose(xy(trace(widget.fig2d, "pose")), before2d, atol=1e-4)  # mirror: it does, a bit
    widget.update(flip=None, flip_mode="ray")


def test_initial_values_and_static_twin_agree(pose):
    w = viz.rotation_widget(pose, t=30.0, yaw=45, pitch=-20, flip=16, flip_mode="mirror", orthographic=True)
    assert w.state == {"yaw": 45, "pitch": -20, "roll": 0, "t": 30.0, "flip": 16, "flip_mode": "mirror",
                       "orthographic": True, "sample": 0}
    posed, kp = viz.posed_view(pose, 45, -20, 0, 30.0, 16, "mirror")
    assert np.allclose(w.pose_3d, posed) and np.allclose(w.pose_2d, kp)
    assert "sample" not in w.sliders  # a single pose has no sample slider


def test_update_rejects_unknown_controls(widget):
    with pytest.raises(ValueError, match="unknown control"):
        widget.update(zoom=2)


def test_compare_widget_follows_sliders(pose):
    gt = np.stack([pose, pose * 0.9, pose * 1.1])
    teacher, student = gt + 0.05, gt - 0.02
    kp = viz.project_pose(gt)
    w = viz.compare_widget(gt, teacher, student, kp2d=kp, unit="model units")
    assert {tr.name for tr in w.fig3d.data} >= {"ground truth", "teacher", "student"}
    assert "0.0866 model units" in w.fig3d.layout.annotations[1].text  # |(0.05, 0.05, 0.05)|
    w.sliders["sample"].value = 2
    assert np.allclose(xyz(trace(w.fig3d, "ground truth")), gt[2])
    assert np.allclose(xy(trace(w.fig2d, "input")), kp[2])
    w.sliders["yaw"].value = 90.0
    assert np.allclose(xyz(trace(w.fig3d, "student")), viz.rotate_pose(student[2], viz.euler_rotation(90)))
    student_only = viz.compare_widget(None, None, student)
    assert student_only.fig2d is None and [a.text for a in student_only.fig3d.layout.annotations] == ["student"]


def test_skeleton_figure_has_equal_aspect_and_image_camera(pose):
    fig = viz.skeleton_figure({"a": pose, "b": viz.flip_joint_depth(pose, 13)})
    scene = fig.layout.scene
    assert scene.aspectmode == "cube" and scene.xaxis.range == scene.yaxis.range == scene.zaxis.range
    assert scene.camera.up.y == -1  # y points down on screen, like the image
    assert np.allclose(xyz(trace(fig, "b"))[13], viz.flip_joint_depth(pose, 13)[13])


def test_static_exports_write_png(tmp_path, pose):
    paths = [tmp_path / "rot.png", tmp_path / "cmp.png", tmp_path / "sub" / "grid.png"]
    figs = [viz.rotation_widget(pose, static=True, yaw=30, flip=13, orthographic=True, path=paths[0]),
            viz.compare_widget(pose, pose + 0.1, None, kp2d=viz.project_pose(pose), static=True, path=paths[1]),
            viz.skeleton_grid(np.stack([pose, pose]), titles=["a", "b"], path=paths[2])]
    for fig, path in zip(figs, paths):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
        plt.close(fig)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # no leftovers


def test_save_figure_is_reproducible_and_optionally_svg(tmp_path, pose):
    fig, ax = plt.subplots()
    viz.plot_skeleton_2d(ax, viz.project_pose(pose))
    a = viz.save_figure(fig, tmp_path / "a.png", svg=True)
    b = viz.save_figure(fig, tmp_path / "b")
    plt.close(fig)
    assert a.read_bytes() == b.read_bytes()  # no timestamps: re-running a notebook does not churn figures
    assert (tmp_path / "a.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("call,name", [
    (lambda bad: viz.rotation_widget(bad), "pose_3d"),
    (lambda bad: viz.rotation_widget(bad, static=True), "pose_3d"),
    (lambda bad: viz.skeleton_figure({"mine": bad}), "poses['mine']"),
    (lambda bad: viz.skeleton_grid(bad), "poses"),
    (lambda bad: viz.compare_widget(bad, None, None), "ground truth"),
    (lambda bad: viz.plot_skeleton_3d(None, bad), "pose"),
    (lambda bad: viz.project_pose(bad), "pose"),
])
def test_wrong_joint_count_is_a_clear_value_error(call, name):
    bad = np.zeros((16, 3))
    with pytest.raises(ValueError) as info:
        call(bad)
    message = str(info.value)
    assert message.startswith(name + ":") and "17" in message and "(16, 3)" in message


def test_bad_2d_input_names_kp2d(pose):
    with pytest.raises(ValueError, match=r"^kp2d: .*\(17, 3\)|^kp2d: "):
        viz.compare_widget(pose, None, None, kp2d=np.zeros((17, 3)))
