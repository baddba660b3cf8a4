import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from itespy import metrics


def _poses(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=300.0, size=(n, 17, 3))


def test_mpjpe_of_hand_made_case():
    gt = np.zeros((1, 17, 3))
    pred = gt.copy()
    pred[0, 1:, 0] = 10.0  # every non-root joint 10 mm off along x
    assert np.isclose(metrics.mpjpe(pred, gt)[0], 10.0 * 16 / 17)
    # translation of the whole pose is removed by root-centring
    assert np.isclose(metrics.mpjpe(gt + 50.0, gt)[0], 0.0)


def test_procrustes_recovers_a_known_similarity_transform():
    gt = _poses()
    rot = Rotation.from_rotvec([0.3, -1.2, 0.5]).as_matrix()
    pred = 0.01 * gt @ rot.T + np.array([1.0, 2.0, 3.0])
    aligned, scale, r, _ = metrics.procrustes_align(pred, gt)
    assert np.allclose(aligned, gt, atol=1e-6)
    assert np.allclose(scale, 100.0)
    assert np.allclose(metrics.p_mpjpe(pred, gt), 0.0, atol=1e-6)


def test_reflection_is_excluded_unless_allowed():
    gt = _poses()
    mirrored = gt * np.array([1.0, 1.0, -1.0])
    assert metrics.p_mpjpe(mirrored, gt).mean() > 10.0
    assert np.allclose(metrics.p_mpjpe(mirrored, gt, allow_reflection=True), 0.0, atol=1e-6)


def test_scale_calibrated_and_flip_best_on_hand_made_cases():
    gt = _poses()
    pred = gt / 250.0  # right shape, unknown scale (model units)
    assert np.allclose(metrics.mpjpe_scaled(pred, gt), 0.0, atol=1e-6)
    assert np.allclose(metrics.n_mpjpe(pred, gt), 0.0, atol=1e-6)
    flipped = metrics.depth_flip(pred)  # the mirror image in depth
    assert metrics.mpjpe_scaled(flipped, gt).mean() > 10.0
    best = metrics.flip_best(metrics.mpjpe_scaled, flipped, gt)
    assert np.allclose(best, 0.0, atol=1e-6)


def test_mirror_rate_counts_the_poses_whose_mirror_scores_better():
    gt = _poses(n=10)
    pred = gt / 250.0
    half = pred.copy()
    half[:5] = metrics.depth_flip(pred[:5])  # five of ten poses with the wrong depth sign
    assert metrics.mirror_rate(pred, gt) == 0.0 and metrics.mirror_rate(half, gt) == 0.5
    flat = pred.copy()
    flat[..., 2] = 0.0  # its own mirror: the flip never helps
    assert metrics.mirror_rate(flat, gt) == 0.0
    assert metrics.mirror_rate(half, gt, metrics.p_mpjpe) == 0.5


def test_pck_and_auc():
    gt = np.zeros((2, 17, 3))
    pred = gt.copy()
    pred[:, 1:, 0] = 100.0  # 16 joints 100 mm off, root exact
    assert np.isclose(metrics.pck(pred, gt, scale_align=False), 100.0)
    assert np.isclose(metrics.pck(pred, gt, threshold_mm=50, scale_align=False), 100 * 1 / 17)
    auc = metrics.auc(pred, gt, scale_align=False)
    assert 0 < auc < 100


def test_per_action_means_and_protocol_names():
    gt = _poses(4)
    pred = gt.copy()
    pred[2:] += np.random.default_rng(1).normal(scale=20, size=pred[2:].shape)
    out = metrics.evaluate_protocol("mpjpe", pred, gt, actions=np.array(["a", "a", "b", "b"]))
    assert out["per_action"]["a"] == 0.0 and out["per_action"]["b"] > 0
    with pytest.raises(ValueError, match="protocol"):
        metrics.evaluate_protocol("nope", pred, gt)


def test_degenerate_and_bad_inputs():
    gt = _poses(2)
    collapsed = np.zeros_like(gt)
    assert np.isfinite(metrics.p_mpjpe(collapsed, gt)).all()
    assert np.isfinite(metrics.mpjpe_scaled(collapsed, gt)).all()
    with pytest.raises(ValueError, match="finite"):
        metrics.mpjpe(np.full_like(gt, np.nan), gt)
    with pytest.raises(ValueError, match="17"):
        metrics.mpjpe(np.zeros((2, 16, 3)), np.zeros((2, 16, 3)))


def test_wrong_handed_rate_counts_mirror_image_bodies(bandai_dir):
    from itespy.evaluate import flat_pose
    gt = np.load(bandai_dir / "bandai_h36m17.npz")["positions"][::200].astype(np.float64)
    assert metrics.wrong_handed_rate(gt) < 0.01
    assert metrics.wrong_handed_rate(metrics.depth_flip(gt)) > 0.99
    half = gt.copy()
    half[::2] = metrics.depth_flip(gt[::2]) + gt[::2, :1]
    assert abs(metrics.wrong_handed_rate(half) - 0.5) < 0.02
    assert metrics.wrong_handed_rate(flat_pose(gt[..., :2] / 1000)) == 0  # no depth, no handedness
