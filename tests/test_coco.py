"""COCO-17 -> H36M-17 conversion (itespy.coco): the copied joints, every derived joint, confidence
propagation, view independence, and the accuracy of the approximations on the kit's synthetic poses."""
import numpy as np
import pytest

from itespy import coco, samples, skeleton
from itespy.coco import coco_to_h36m


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _random_coco(rng, n=5):
    return rng.uniform(0, 500, size=(n, 17, 2))


def test_reexported_from_skeleton():
    assert skeleton.coco_to_h36m is coco_to_h36m
    assert skeleton.COCO_KEYPOINT_NAMES == coco.COCO_KEYPOINT_NAMES and len(coco.COCO_KEYPOINT_NAMES) == 17


def test_mapping_table_covers_every_h36m_joint_in_order():
    assert tuple(name for name, _ in coco.MAPPING_TABLE) == skeleton.JOINT_NAMES


def test_shared_joints_are_copied_with_matching_sides(rng):
    kp = _random_coco(rng)
    out, conf = coco_to_h36m(kp)
    for h, c in coco.H36M_FROM_COCO.items():
        np.testing.assert_array_equal(out[:, h], kp[:, c])
        # the subject's left stays left, right stays right
        h_name, c_name = skeleton.JOINT_NAMES[h], coco.COCO_KEYPOINT_NAMES[c]
        assert h_name.startswith("L") == c_name.startswith("left")
        assert h_name.startswith("R") == c_name.startswith("right")
    np.testing.assert_array_equal(conf, 1.0)


def test_derived_joints(rng):
    kp = _random_coco(rng)
    out, _ = coco_to_h36m(kp)
    pelvis = (kp[:, 11] + kp[:, 12]) / 2
    thorax = (kp[:, 5] + kp[:, 6]) / 2
    np.testing.assert_allclose(out[:, 0], pelvis)
    np.testing.assert_allclose(out[:, 8], thorax)
    np.testing.assert_allclose(out[:, 7], (pelvis + thorax) / 2)
    np.testing.assert_allclose(out[:, 9], kp[:, 0])
    face = kp[:, 1:5].mean(1)
    np.testing.assert_allclose(out[:, 10], face + coco.HEAD_EXTRAPOLATION * (face - thorax))


def test_head_uses_visible_face_keypoints_only_then_the_nose(rng):
    kp = _random_coco(rng, 1)[0]
    thorax = (kp[5] + kp[6]) / 2
    conf = np.full(17, 0.9)
    conf[[1, 2]] = 0.1  # eyes not visible: ears only
    out, out_conf = coco_to_h36m(kp, conf)
    ears = kp[[3, 4]].mean(0)
    np.testing.assert_allclose(out[10], ears + 0.7 * (ears - thorax))
    assert out_conf[10] == pytest.approx(0.9)  # the invisible eyes do not lower the head's confidence
    conf[[1, 2]] = 0.9
    conf[3] = 0.1  # one ear lost: the complete pair (the eyes) alone, so the head is not pulled sideways
    out, _ = coco_to_h36m(kp, conf)
    eyes = kp[[1, 2]].mean(0)
    np.testing.assert_allclose(out[10], eyes + 0.7 * (eyes - thorax))
    conf[[2, 4]] = 0.1  # profile view, no complete pair: the visible left eye alone
    out, out_conf = coco_to_h36m(kp, conf)
    np.testing.assert_allclose(out[10], kp[1] + 0.7 * (kp[1] - thorax))
    conf[[1, 2, 3, 4]] = 0.0  # no face keypoint at all: the nose, factor 1
    conf[0] = 0.8
    out, out_conf = coco_to_h36m(kp, conf)
    np.testing.assert_allclose(out[10], kp[0] + 1.0 * (kp[0] - thorax))
    assert out_conf[10] == pytest.approx(0.8)


def test_confidence_is_the_minimum_of_the_sources():
    kp = np.zeros((17, 2))
    kp[:, 0] = np.arange(17)
    conf = np.linspace(0.95, 0.35, 17)  # all above the face threshold, all different
    _, out = coco_to_h36m(kp, conf)
    assert out[0] == pytest.approx(min(conf[11], conf[12]))  # pelvis
    assert out[8] == pytest.approx(min(conf[5], conf[6]))  # thorax
    assert out[7] == pytest.approx(min(conf[5], conf[6], conf[11], conf[12]))  # spine
    assert out[10] == pytest.approx(min(conf[1:7]))  # head: eyes, ears, shoulders
    for h, c in coco.H36M_FROM_COCO.items():
        assert out[h] == conf[c]


def test_third_column_is_the_confidence_and_shapes_are_checked(rng):
    kp = _random_coco(rng, 3)
    conf = rng.uniform(0, 1, size=(3, 17))
    a = coco_to_h36m(np.concatenate([kp, conf[..., None]], -1))
    b = coco_to_h36m(kp, conf)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    out, _ = coco_to_h36m(kp[0])  # a single frame (17, 2)
    assert out.shape == (17, 2)
    with pytest.raises(ValueError, match="17"):
        coco_to_h36m(np.zeros((3, 18, 2)))
    with pytest.raises(ValueError, match="twice"):
        coco_to_h36m(np.zeros((3, 17, 3)), np.ones((3, 17)))


def test_rules_are_view_independent(rng):
    """Rotating, scaling and shifting the image moves the converted skeleton the same way."""
    kp = _random_coco(rng)
    a = 0.7
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = 1.8 * kp @ rot.T + np.array([30.0, -12.0])
    np.testing.assert_allclose(coco_to_h36m(moved)[0], 1.8 * coco_to_h36m(kp)[0] @ rot.T + np.array([30.0, -12.0]),
                               atol=1e-9)


def test_approximations_are_close_on_synthetic_poses():
    """Project the synthetic test clip's 3D joints (plus a model face) to COCO-17 pixels, convert back,
    and compare each derived joint with the true H36M pixel position (in pelvis-to-head lengths)."""
    clip = samples.synthetic_clip(seed=0)
    pts = samples.coco_points_3d(clip["cam3d_mm"])
    px = pts[..., :2] / pts[..., 2:] * clip["focal_px"] + clip["principal_px"]
    out, _ = coco_to_h36m(px)
    truth = clip["pixels"]
    length = np.linalg.norm(truth[:, 10] - truth[:, 0], axis=-1).mean()
    err = np.linalg.norm(out - truth, axis=-1).mean(0) / length
    shared = list(coco.H36M_FROM_COCO)
    assert err[shared].max() < 1e-6
    bounds = {0: 0.05, 7: 0.05, 8: 0.08, 10: 0.06}  # measured 0.03, 0.025, 0.05, 0.02 (seed 0)
    for joint, bound in bounds.items():
        assert err[joint] < bound, (skeleton.JOINT_NAMES[joint], err[joint])


@pytest.mark.parametrize("clip", [9, 4])  # a walk and a sit
def test_sample_face_model_is_anatomical(clip):
    data = samples.synthetic_clip(seed=0, clip=clip)
    poses = data["poses_3d_mm"]
    pts = samples.coco_points_3d(poses)
    left_sh, right_sh = poses[:, 11], poses[:, 14]
    def dist(a, b):
        return np.linalg.norm(a - b, axis=-1)

    for left, right in ((1, 2), (3, 4)):  # the left eye / ear is on the subject's left
        assert (dist(pts[:, left], left_sh) < dist(pts[:, left], right_sh)).all()
        assert (dist(pts[:, right], right_sh) < dist(pts[:, right], left_sh)).all()
    # the face looks the way the knees bend: knees lie in front of the hip-ankle line (on average)
    forward = pts[:, [1, 2]].mean(1) - pts[:, [3, 4]].mean(1)
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
        ahead = ((poses[:, knee] - (poses[:, hip] + poses[:, ankle]) / 2) * forward).sum(-1)
        assert ahead.mean() > 10.0  # mm
