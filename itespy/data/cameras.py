"""Cameras: the pinhole(+distortion) model, Human3.6M and MPI-INF-3DHP camera facts, and the virtual
H36M-like rig used to view world-frame sources (synthetic, mocap, BVH).

Conventions
-----------
* World frames are Z-up, millimetres (Human3.6M, Bandai npz, the synthetic generator).
* Camera frame: x right, y down, z forward (OpenCV / Human3.6M), millimetres.
* A :class:`Camera` maps a world point X to the camera frame as ``x = R (X - centre)`` (R acts on
  columns, as everywhere in itespy; R's rows are the camera axes in world coordinates).
* Pixels: ``u = f * x/z + c`` with optional Brown-Conrady distortion applied the way VideoPose3D's
  ``project_to_2d`` does (radial k1..k3, tangential p1, p2, normalised coordinates clipped to [-1, 1]).

Sources of the numbers (kept here as data, not downloaded):

* Human3.6M intrinsics (per camera id) and per-subject extrinsics (orientation quaternion (w, x, y, z)
  of the camera in the world, camera centre in mm): ``common/h36m_dataset.py`` of
  facebookresearch/VideoPose3D (commit 11e90ad, copied verbatim; they originate from the Human3.6M
  release's metadata).
* MPI-INF-3DHP test-set intrinsics: TS1-TS4 were filmed by studio camera 8 (2048x2048);
  TS5-TS6 outdoors with another camera (1920x1080). Values as used by public 3DHP loaders
  (``mpi_inf_3dhp_cameras_intrinsic_params`` in VideoPose3D-derived code, entries 'cam_8' and 'TS56').
  They are not in the test set's ``annot_data.mat``; treat them as +-0.1 % accurate. They only set the
  2D normalisation (pixels / focal), which the dataset-wide scale absorbs almost entirely.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..skeleton import ROOT
from .errors import DataError

# --------------------------------------------------------------------------------- Human3.6M (VideoPose3D)
H36M_SOURCE = "facebookresearch/VideoPose3D common/h36m_dataset.py (commit 11e90ad)"
H36M_CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
H36M_INTRINSICS = {
    "54138969": dict(center=(512.54150390625, 515.4514770507812), focal_length=(1145.0494384765625, 1143.7811279296875),
                     radial_distortion=(-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
                     tangential_distortion=(-0.0009756988729350269, -0.00142447161488235), res_w=1000, res_h=1002),
    "55011271": dict(center=(508.8486328125, 508.0649108886719), focal_length=(1149.6756591796875, 1147.5916748046875),
                     radial_distortion=(-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
                     tangential_distortion=(-0.0016190266469493508, -0.0027408944442868233), res_w=1000, res_h=1000),
    "58860488": dict(center=(519.8158569335938, 501.40264892578125), focal_length=(1149.1407470703125, 1148.7989501953125),
                     radial_distortion=(-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
                     tangential_distortion=(0.0014843869721516967, -0.0007599993259645998), res_w=1000, res_h=1000),
    "60457274": dict(center=(514.9682006835938, 501.88201904296875), focal_length=(1145.5113525390625, 1144.77392578125),
                     radial_distortion=(-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
                     tangential_distortion=(-0.0005872055771760643, -0.0018133620033040643), res_w=1000, res_h=1002),
}
# Per subject, per camera (order of H36M_CAMERA_IDS): orientation quaternion (w, x, y, z), translation (mm).
H36M_EXTRINSICS = {
    "S1": [((0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088), (1841.1070556640625, 4955.28466796875, 1563.4454345703125)),
           ((0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205), (1761.278564453125, -5078.0068359375, 1606.2650146484375)),
           ((0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696), (-1846.7777099609375, 5215.04638671875, 1491.972412109375)),
           ((0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435), (-1794.7896728515625, -3722.698974609375, 1574.8927001953125))],
    "S5": [((0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332), (2097.3916015625, 4880.94482421875, 1605.732421875)),
           ((0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915), (2031.7008056640625, -5167.93310546875, 1612.923095703125)),
           ((0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576), (-1620.5948486328125, 5171.65869140625, 1496.43701171875)),
           ((0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092), (-1637.1737060546875, -3867.3173828125, 1547.033203125))],
    "S6": [((0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938), (1935.4517822265625, 4950.24560546875, 1618.0838623046875)),
           ((0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428), (1969.803955078125, -5128.73876953125, 1632.77880859375)),
           ((0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334), (-1769.596435546875, 5185.361328125, 1476.993408203125)),
           ((0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802), (-1721.668701171875, -3884.13134765625, 1540.4879150390625))],
    "S7": [((0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778), (1974.512939453125, 4926.3544921875, 1597.8326416015625)),
           ((0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508), (1937.0584716796875, -5119.7900390625, 1631.5665283203125)),
           ((0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278), (-1741.8111572265625, 5208.24951171875, 1464.8245849609375)),
           ((0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523), (-1734.7105712890625, -3832.42138671875, 1548.5830078125))],
    "S8": [((0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773), (2150.65185546875, 4896.1611328125, 1611.9046630859375)),
           ((0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615), (2219.965576171875, -5148.453125, 1613.0440673828125)),
           ((0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755), (-1571.2215576171875, 5137.0185546875, 1498.1761474609375)),
           ((0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708), (-1476.913330078125, -3896.7412109375, 1547.97216796875))],
    "S9": [((0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243), (2044.45849609375, 4935.1171875, 1481.2275390625)),
           ((0.618784487247467, -0.7634735107421875, -0.14132238924503326, 0.11933968216180801), (1990.959716796875, -5123.810546875, 1568.8048095703125)),
           ((0.13357827067375183, -0.1367100477218628, 0.7689454555511475, -0.6100738644599915), (-1670.9921875, 5211.98583984375, 1528.387939453125)),
           ((0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822), (-1696.04345703125, -3827.099853515625, 1591.4127197265625))],
    "S11": [((0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467), (2098.440185546875, 4926.5546875, 1500.278564453125)),
            ((0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085), (2083.182373046875, -4912.1728515625, 1561.07861328125)),
            ((0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407), (-1609.8153076171875, 5177.3359375, 1537.896728515625)),
            ((0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809), (-1590.738037109375, -3854.1689453125, 1578.017578125))],
}

# --------------------------------------------------------------------------------- MPI-INF-3DHP test set
MPI3DHP_SOURCE = ("public 3DHP loaders (VideoPose3D-derived mpi_inf_3dhp_dataset.py: 'cam_8' for TS1-4, "
                  "'TS56' for TS5-6); not part of annot_data.mat")
MPI3DHP_INTRINSICS = {
    "studio": dict(focal_length=(1500.172, 1500.837), center=(1017.387, 1043.032), res_w=2048, res_h=2048,
                   sequences=("TS1", "TS2", "TS3", "TS4")),
    "outdoor": dict(focal_length=(1683.98345952, 1672.59370772), center=(939.85754016, 560.140743168),
                    res_w=1920, res_h=1080, sequences=("TS5", "TS6"),
                    radial_distortion=(-0.276859611, 0.131125256, -0.049318332),
                    tangential_distortion=(-0.000360494, -0.001149441)),
}

# --------------------------------------------------------------------------------- virtual rig defaults
VIRTUAL_FOCAL = 1145.0  # px, Human3.6M-like
VIRTUAL_CENTER = (512.0, 515.0)  # px
VIRTUAL_RES = (1000, 1000)


def quaternion_to_matrix(q) -> np.ndarray:
    """Unit quaternion(s) (..., 4) as (w, x, y, z) -> rotation matrices (..., 3, 3) (column convention)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                  2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                  2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


@dataclass
class Camera:
    """Pinhole camera with optional distortion. ``R``: world->camera rotation (3,3); ``centre``: camera
    position in the world (mm); ``focal`` (fx, fy) and ``center`` (cx, cy) in pixels."""
    R: np.ndarray
    centre: np.ndarray
    focal: np.ndarray
    center: np.ndarray
    radial: np.ndarray = field(default_factory=lambda: np.zeros(3))
    tangential: np.ndarray = field(default_factory=lambda: np.zeros(2))
    res: tuple = VIRTUAL_RES
    name: str = "camera"

    def __post_init__(self):
        self.R = np.asarray(self.R, dtype=np.float64).reshape(3, 3)
        self.centre = np.asarray(self.centre, dtype=np.float64).reshape(3)
        self.focal = np.broadcast_to(np.asarray(self.focal, dtype=np.float64), (2,)).copy()
        self.center = np.asarray(self.center, dtype=np.float64).reshape(2)
        self.radial = np.asarray(self.radial, dtype=np.float64).reshape(3)
        self.tangential = np.asarray(self.tangential, dtype=np.float64).reshape(2)

    @property
    def distorted(self) -> bool:
        return bool(np.any(self.radial) or np.any(self.tangential))

    def world_to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """(..., 3) world mm -> (..., 3) camera frame mm: x = R (X - centre)."""
        return (np.asarray(points_world, dtype=np.float64) - self.centre) @ self.R.T

    def camera_to_world(self, points_cam: np.ndarray) -> np.ndarray:
        return np.asarray(points_cam, dtype=np.float64) @ self.R + self.centre

    def project(self, points_cam: np.ndarray, distort: bool = True) -> np.ndarray:
        """(..., 3) camera-frame points -> (..., 2) pixels (see :func:`project_to_pixels`)."""
        return project_to_pixels(points_cam, self.focal, self.center,
                                 self.radial if distort else None, self.tangential if distort else None)

    def to_dict(self) -> dict:
        return {"name": self.name, "R": self.R.tolist(), "centre_mm": self.centre.tolist(),
                "focal_px": self.focal.tolist(), "center_px": self.center.tolist(),
                "radial": self.radial.tolist(), "tangential": self.tangential.tolist(), "res": list(self.res)}


def project_to_pixels(points_cam, focal, center, radial=None, tangential=None) -> np.ndarray:
    """Camera-frame (..., 3) -> pixels (..., 2). With distortion, as VideoPose3D ``project_to_2d``:
    xn = clip(x/z, -1, 1); r2 = |xn|^2; xd = xn (1 + k1 r2 + k2 r2^2 + k3 r2^3 + p.xn) + p r2;
    u = f xd + c. Raises DataError for points at or behind the camera (z <= 0)."""
    p = np.asarray(points_cam, dtype=np.float64)
    z = p[..., 2:3]
    if np.any(z <= 0):
        raise DataError("project_to_pixels: some points are at or behind the camera (z <= 0 mm); "
                        "expected every joint in front of the camera")
    xn = p[..., :2] / z
    if radial is not None and (np.any(radial) or (tangential is not None and np.any(tangential))):
        k = np.asarray(radial, dtype=np.float64)
        t = np.zeros(2) if tangential is None else np.asarray(tangential, dtype=np.float64)
        xn = np.clip(xn, -1.0, 1.0)
        r2 = (xn ** 2).sum(-1, keepdims=True)
        radial_f = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
        tan = (t * xn).sum(-1, keepdims=True)
        xn = xn * (radial_f + tan) + t * r2
    return xn * np.asarray(focal, dtype=np.float64) + np.asarray(center, dtype=np.float64)


def h36m_camera(subject: str, index: int) -> Camera:
    """The Human3.6M camera ``index`` (0-3, order of H36M_CAMERA_IDS) for ``subject`` ('S1', ..., 'S11')."""
    if subject not in H36M_EXTRINSICS:
        raise DataError(f"Human3.6M: no camera extrinsics for subject {subject!r}; "
                        f"known subjects: {sorted(H36M_EXTRINSICS)} (source: {H36M_SOURCE})")
    cam_id = H36M_CAMERA_IDS[index]
    intr = H36M_INTRINSICS[cam_id]
    q, t = H36M_EXTRINSICS[subject][index]
    return Camera(R=quaternion_to_matrix(q).T, centre=np.array(t), focal=intr["focal_length"],
                  center=intr["center"], radial=intr["radial_distortion"],
                  tangential=intr["tangential_distortion"], res=(intr["res_w"], intr["res_h"]),
                  name=f"{subject}/{cam_id}")


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """World->camera rotation for a camera at ``eye`` looking at ``target`` (world Z-up): rows are the
    camera x (right), y (down), z (forward) axes."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    zc = target - eye
    zc /= np.linalg.norm(zc)
    xc = np.cross(zc, up)
    n = np.linalg.norm(xc)
    if n < 1e-9:
        raise DataError("look_at: viewing direction is parallel to 'up'")
    xc /= n
    yc = np.cross(zc, xc)
    return np.stack([xc, yc, zc])


def make_virtual_rig(rng: np.random.Generator, n_cameras: int = 4, distance_mm=(3500.0, 5500.0),
                     height_mm=(1000.0, 1800.0), focal_px: float = VIRTUAL_FOCAL, center_px=VIRTUAL_CENTER,
                     res=VIRTUAL_RES, target_height_mm=(800.0, 1100.0)) -> list:
    """An H36M-like rig: ``n_cameras`` cameras spread around the capture area (azimuths evenly spaced
    from a random start, +-15 deg jitter), 3.5-5.5 m from the centre, 1.0-1.8 m high, each aimed at a
    point near the centre at pelvis height (0.8-1.1 m, +-150 mm), f = 1145 px, c = (512, 515), no distortion."""
    cams = []
    start = rng.uniform(0, 2 * np.pi)
    for i in range(n_cameras):
        az = start + 2 * np.pi * i / n_cameras + np.deg2rad(rng.uniform(-15, 15))
        d = rng.uniform(*distance_mm)
        eye = np.array([d * np.cos(az), d * np.sin(az), rng.uniform(*height_mm)])
        target = np.array([rng.uniform(-150, 150), rng.uniform(-150, 150), rng.uniform(*target_height_mm)])
        cams.append(Camera(R=look_at(eye, target), centre=eye, focal=(focal_px, focal_px), center=center_px,
                           res=tuple(res), name=f"virtual{i}"))
    return cams


def yaw_matrix(angle):
    """Rotation(s) about the world Z axis by ``angle`` radians: (..., 3, 3)."""
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], axis=-1).reshape(a.shape + (3, 3))


def place_sequences(positions_world: np.ndarray, sequence: np.ndarray, rng: np.random.Generator,
                    radius_mm: float = 700.0, max_radius_mm: float = 1000.0) -> np.ndarray:
    """Put each sequence in the capture area: remove its mean ground-plane root position, rotate it about
    Z by a random yaw, shift it to a random point within ``radius_mm`` of the centre, and clamp root
    positions to ``max_radius_mm`` (a long walk stops at the edge of the area). Heights are unchanged."""
    pos = np.asarray(positions_world, dtype=np.float64)
    seq_ids, inverse = np.unique(np.asarray(sequence), return_inverse=True)
    k = len(seq_ids)
    yaw = rng.uniform(0, 2 * np.pi, size=k)
    r = radius_mm * np.sqrt(rng.uniform(0, 1, size=k))
    phi = rng.uniform(0, 2 * np.pi, size=k)
    offset = np.stack([r * np.cos(phi), r * np.sin(phi), np.zeros(k)], -1)
    root = pos[:, ROOT].copy()
    counts = np.bincount(inverse, minlength=k)
    mean_xy = np.stack([np.bincount(inverse, root[:, i], minlength=k) / counts for i in range(2)], -1)
    centred = pos.copy()
    centred[..., :2] -= mean_xy[inverse][:, None, :]
    rot = yaw_matrix(yaw)[inverse]  # (N,3,3)
    out = np.einsum("nij,nkj->nki", rot, centred) + offset[inverse][:, None, :]
    root_xy = out[:, ROOT, :2]
    dist = np.linalg.norm(root_xy, axis=-1)
    over = dist > max_radius_mm
    if over.any():
        shift = root_xy[over] * (max_radius_mm / dist[over] - 1.0)[:, None]
        out[over, :, :2] += shift[:, None, :]
    return out


def view_through_rig(positions_world: np.ndarray, sequence: np.ndarray, rig: list, rng: np.random.Generator,
                     views: int = 1, place: bool = True, **place_kwargs):
    """View world-frame poses (N,17,3 mm, Z up) through a camera rig.

    ``views=1``: each sequence is seen by one camera of the rig, chosen at random per sequence;
    ``views=len(rig)``: by every camera (rows repeated, like Human3.6M's 4 views).
    Returns (cam3d (M,17,3) mm camera frame, px (M,17,2), focal (M,2), row index into the input (M,),
    camera index (M,)). Joints behind a camera never happen for the default rig and placement."""
    pos = place_sequences(positions_world, sequence, rng, **place_kwargs) if place else np.asarray(
        positions_world, dtype=np.float64)
    n = len(pos)
    if views < 1 or views > len(rig):
        raise DataError(f"view_through_rig: views must be in 1..{len(rig)}, got {views}")
    if views == 1:
        _, inverse = np.unique(np.asarray(sequence), return_inverse=True)
        per_seq = rng.integers(0, len(rig), size=inverse.max() + 1 if n else 0)
        cam_idx = per_seq[inverse] if n else np.zeros(0, dtype=np.int64)
        rows = np.arange(n)
    else:
        order = [np.arange(n)] * views
        rows = np.concatenate(order)
        start = rng.integers(0, len(rig))
        cam_idx = np.concatenate([np.full(n, (start + v) % len(rig)) for v in range(views)])
    cam3d = np.empty((len(rows), pos.shape[1], 3))
    px = np.empty((len(rows), pos.shape[1], 2))
    focal = np.empty((len(rows), 2))
    for ci, cam in enumerate(rig):
        sel = np.flatnonzero(cam_idx == ci)
        if not len(sel):
            continue
        pc = cam.world_to_camera(pos[rows[sel]])
        cam3d[sel] = pc
        px[sel] = cam.project(pc)
        focal[sel] = cam.focal
    return cam3d, px, focal, rows, cam_idx.astype(np.int64)
