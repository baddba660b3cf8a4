"""Camera model, Human3.6M camera table, virtual rig."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from itespy.data import DataError
from itespy.data import cameras as C
from itespy.data.synthetic import generate


def test_quaternion_matches_scipy():
    q = np.array(C.H36M_EXTRINSICS["S9"][2][0])
    ours = C.quaternion_to_matrix(q)
    ref = Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix()  # scipy: (x, y, z, w)
    np.testing.assert_allclose(ours, ref, atol=1e-7)
    np.testing.assert_allclose(ours @ ours.T, np.eye(3), atol=1e-7)


@pytest.mark.parametrize("subject", sorted(C.H36M_EXTRINSICS))
def test_h36m_cameras_see_the_capture_area(subject):
    """The centre of the H36M capture area (world origin, 1 m up) is in front of all four cameras, inside
    the image, 3.5-6.5 m away; a wrong quaternion convention (R instead of R^T) fails this."""
    for i in range(4):
        cam = C.h36m_camera(subject, i)
        pc = cam.world_to_camera(np.array([0.0, 0.0, 1000.0]))
        assert 3500 < pc[2] < 6500
        u, v = cam.project(pc)
        assert 0 < u < cam.res[0] and 0 < v < cam.res[1]
        # the world's up axis points up in the image (y down in the camera frame)
        assert cam.R[1] @ np.array([0, 0, 1.0]) < -0.9
        np.testing.assert_allclose(cam.camera_to_world(pc), [0, 0, 1000.0], atol=1e-6)


def test_h36m_camera_facts():
    cam = C.h36m_camera("S1", 0)
    np.testing.assert_allclose(cam.focal, [1145.0494384765625, 1143.7811279296875])
    np.testing.assert_allclose(cam.center, [512.54150390625, 515.4514770507812])
    assert cam.name == "S1/54138969"
    with pytest.raises(DataError, match="S2"):
        C.h36m_camera("S2", 0)


def test_projection_pinhole_and_distortion():
    pts = np.array([[100.0, -200.0, 4000.0], [0.0, 0.0, 5000.0]])
    px = C.project_to_pixels(pts, (1000.0, 1100.0), (500.0, 510.0))
    np.testing.assert_allclose(px[0], [500 + 1000 * 0.025, 510 - 1100 * 0.05])
    k, p = (-0.2, 0.25, -0.003), (-0.001, -0.0014)
    d = C.project_to_pixels(pts, (1000.0, 1100.0), (500.0, 510.0), k, p)
    np.testing.assert_allclose(d[1], [500, 510])  # the optical axis is not distorted
    x, y = 0.025, -0.05  # hand-computed Brown-Conrady, VideoPose3D form
    r2 = x * x + y * y
    rad = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3 + p[0] * x + p[1] * y
    np.testing.assert_allclose(d[0], [500 + 1000 * (x * rad + p[0] * r2), 510 + 1100 * (y * rad + p[1] * r2)])
    with pytest.raises(DataError, match="behind"):
        C.project_to_pixels(np.array([[0.0, 0.0, -1.0]]), 1000.0, (0.0, 0.0))


def test_look_at_and_virtual_rig():
    rng = np.random.default_rng(0)
    rig = C.make_virtual_rig(rng)
    assert len(rig) == 4
    azimuths = []
    for cam in rig:
        horiz = np.linalg.norm(cam.centre[:2])
        assert 3500 <= horiz <= 5500 and 1000 <= cam.centre[2] <= 1800
        np.testing.assert_allclose(cam.focal, [1145, 1145])
        np.testing.assert_allclose(cam.center, [512, 515])
        assert np.linalg.det(cam.R) == pytest.approx(1.0)
        u, v = cam.project(cam.world_to_camera(np.array([0.0, 0.0, 950.0])))
        assert abs(u - 512) < 60 and abs(v - 515) < 80  # aimed at the capture centre, pelvis height
        azimuths.append(np.arctan2(cam.centre[1], cam.centre[0]))
    gaps = np.diff(np.sort(np.mod(azimuths, 2 * np.pi)))
    assert gaps.min() > np.deg2rad(45)  # spread around the area
    np.testing.assert_allclose(C.look_at([0, -4000, 1000], [0, 0, 1000]), [[1, 0, 0], [0, 0, -1], [0, 1, 0]],
                               atol=1e-12)


def test_view_through_rig_keeps_people_in_view():
    d = generate(n_subjects=4, clips_per_subject=14, clip_len=40, seed=3)
    rng = np.random.default_rng(1)
    rig = C.make_virtual_rig(rng)
    cam3d, px, focal, rows, cam_idx = C.view_through_rig(d["positions"], d["sequence"], rig, rng)
    assert len(rows) == len(d["positions"]) and (cam3d[..., 2] > 1500).all()
    inside = ((px >= 0) & (px <= 1000)).all(axis=(1, 2))
    assert inside.mean() > 0.99
    # one camera per sequence; bone lengths unchanged by placement and viewing
    for seq in np.unique(d["sequence"])[:10]:
        assert len(np.unique(cam_idx[d["sequence"] == seq])) == 1
    from itespy.skeleton import bone_lengths
    np.testing.assert_allclose(bone_lengths(cam3d), bone_lengths(d["positions"].astype(np.float64)), atol=1e-2)
    c4, p4, f4, r4, i4 = C.view_through_rig(d["positions"], d["sequence"], rig, np.random.default_rng(1), views=4)
    assert len(r4) == 4 * len(d["positions"]) and set(np.unique(i4)) == {0, 1, 2, 3}
    with pytest.raises(DataError):
        C.view_through_rig(d["positions"], d["sequence"], rig, rng, views=5)


def test_place_sequences_clamps_to_area_and_keeps_heights():
    d = generate(n_subjects=2, clips_per_subject=7, clip_len=100, seed=0)
    placed = C.place_sequences(d["positions"], d["sequence"], np.random.default_rng(0))
    assert np.linalg.norm(placed[:, 0, :2], axis=-1).max() <= 1000 + 1e-6
    np.testing.assert_allclose(placed[..., 2], d["positions"][..., 2], atol=1e-3)
