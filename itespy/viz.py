"""Drawing skeletons: matplotlib figures for papers and ``figures/``, plotly widgets for notebooks.

Conventions (see :mod:`itespy.geometry`): poses are ``(17, 3)`` arrays (or ``(S, 17, 3)`` sequences)
in the H36M-17 joint order, in the camera frame: x right, y **down**, z = depth away from the camera.
Every drawing function is unit-agnostic (millimetres or model units, as given); the projection helpers
work in model units with the root at depth ``t`` (default ``geometry.ROOT_DISTANCE = 5``).
3D views are drawn the way the camera sees them: x to the right, y downwards, depth going into the
screen. Left limbs, right limbs and the torso get distinct colours (:data:`SIDE_COLORS`).

Interactive helpers (:func:`rotation_widget`, :func:`compare_widget`) return ipywidgets boxes that show
plotly figures through :class:`PlotlyView` (needs ``anywidget``); each has a matplotlib twin (``*_static``,
or ``static=True``) so headless runs and ``figures/`` still show something.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import anywidget
import ipywidgets as widgets
import numpy as np
import torch
import traitlets

from . import geometry
from .skeleton import BONES, JOINT_NAMES, LEFT_JOINTS, NUM_JOINTS, PARENTS, RIGHT_JOINTS, check_joint_count

SIDE_COLORS = {"left": "#1f77b4", "right": "#d62728", "torso": "#444444"}  # subject's own left/right
POSE_PALETTE = ("#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")  # extra poses

# A standing pose (camera frame, millimetres, root-centred; x right, y down, z depth), facing the camera,
# so the subject's right side is on the image's left. Hand-made for teaching: the left forearm reaches
# towards the camera, the left knee is bent forward, the right arm hangs. Pelvis-to-head is 690 mm.
EXAMPLE_POSE_MM = np.array([
    [0, 0, 0], [-130, 0, 10], [-150, 440, 30], [-160, 880, 80],          # Hip, RHip, RKnee, RFoot
    [130, 0, -10], [170, 420, -120], [175, 840, 20],                     # LHip, LKnee, LFoot
    [0, -230, 10], [0, -480, 20], [0, -580, -40], [0, -690, 0],          # Spine, Thorax, Neck/Nose, Head
    [160, -450, 20], [260, -200, -10], [240, -40, -190],                 # LShoulder, LElbow, LWrist
    [-160, -450, 20], [-255, -200, 50], [-280, 40, 10],                   # RShoulder, RElbow, RWrist
], dtype=np.float64)

# Limbs offered by the depth-flip control: (label, child joint); the bone is PARENTS[joint] -> joint.
FLIP_CHOICES = (("none", None), ("left forearm", 13), ("right forearm", 16), ("left upper arm", 12),
                ("right upper arm", 15), ("left shin", 6), ("right shin", 3), ("left thigh", 5),
                ("right thigh", 2), ("head", 10))


def example_pose(units: str = "model") -> np.ndarray:
    """:data:`EXAMPLE_POSE_MM` as a fresh (17, 3) float64 array; ``units="model"`` rescales it so the
    pelvis-to-head length is 1 model unit (the scale of the ITES model space, geometry.ROOT_DISTANCE)."""
    pose = EXAMPLE_POSE_MM.copy()
    if units == "mm":
        return pose
    if units == "model":
        return pose / np.linalg.norm(pose[10] - pose[0])
    raise ValueError(f"example_pose: units must be 'model' or 'mm', got {units!r}")


def _poses(x, name: str, dims=(3,)) -> np.ndarray:
    """Validate and convert (array or tensor) to float64 numpy, shape (..., 17, D)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    check_joint_count(x, name, dims=dims)
    return x


# ----------------------------------------------------------------------------------------------------
# Rotations, projections and depth flips (numpy wrappers around itespy.geometry, float64)
# ----------------------------------------------------------------------------------------------------
def euler_rotation(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """(3, 3) rotation R = R_z(roll) R_x(pitch) R_y(yaw), angles in **degrees**, column-vector convention.

    yaw turns about the camera's vertical (y) axis, pitch about its horizontal x axis, roll about the
    optical (z) axis."""
    a, b, c = np.deg2rad([yaw, pitch, roll])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ rx @ ry


def rotate_pose(pose, rotation) -> np.ndarray:
    """R Y for row-stacked poses (..., 17, 3) (:func:`geometry.rotate`), returned as float64 numpy."""
    pose = _poses(pose, "pose")
    return geometry.rotate(torch.from_numpy(pose), torch.as_tensor(np.asarray(rotation, np.float64))).numpy()


def project_pose(pose, t: float = geometry.ROOT_DISTANCE, mode: str = "perspective") -> np.ndarray:
    """Model-space 2D (..., 17, 2) of root-centred poses (model units) with the root at depth ``t``.

    ``mode="perspective"``: P(Y) = (x, y) / max(1, t + z); ``"orthographic"``: (x, y) / t."""
    pose = torch.from_numpy(_poses(pose, "pose"))
    if mode == "perspective":
        return geometry.perspective_project(pose, t).numpy()
    if mode == "orthographic":
        return geometry.orthographic_project(pose, t).numpy()
    raise ValueError(f"project_pose: mode must be 'perspective' or 'orthographic', got {mode!r}")


def descendants(joint: int) -> list[int]:
    """``joint`` and every joint below it in the kinematic tree, parents before children."""
    out = [joint]
    for j in range(NUM_JOINTS):  # PARENTS is topologically ordered (parent index < child index)
        if PARENTS[j] in out:
            out.append(j)
    return out


def flip_joint_depth(pose, joint: int, t: float = geometry.ROOT_DISTANCE, mode: str = "ray") -> np.ndarray:
    """Flip the depth of the limb ending at ``joint`` relative to its parent joint (model units, camera frame).

    ``mode="mirror"``: reflect the limb's subtree across the plane z = z_parent. Bone lengths are kept and
    the orthographic 2D is unchanged, but the perspective 2D moves slightly.
    ``mode="ray"``: the perspective-exact flip: slide ``joint`` along its camera ray (the line through the
    camera centre at depth -t and the joint) to the other point at the same distance from its parent;
    descendants follow, each on its own ray, keeping its bone length (the solution nearest to the mirror
    flip is used; if a ray is too far to reach, the nearest point on it). The perspective 2D is unchanged.
    """
    pose = _poses(pose, "pose").copy()
    if pose.ndim != 2:
        raise ValueError(f"flip_joint_depth: expects one pose (17, 3), got {pose.shape}")
    if not 0 < joint < NUM_JOINTS:
        raise ValueError(f"flip_joint_depth: joint must be a non-root joint index 1..16, got {joint}")
    parent, subtree = PARENTS[joint], descendants(joint)
    mirrored = pose.copy()
    mirrored[subtree, 2] = 2 * pose[parent, 2] - pose[subtree, 2]
    if mode == "mirror":
        return mirrored
    if mode != "ray":
        raise ValueError(f"flip_joint_depth: mode must be 'ray' or 'mirror', got {mode!r}")
    cam = pose + np.array([0.0, 0.0, t])  # camera-centred coordinates
    new, target = cam.copy(), mirrored + np.array([0.0, 0.0, t])
    for j in subtree:
        p, u = new[PARENTS[j]], cam[j]  # points on the ray: s * u
        length2 = np.sum((cam[j] - cam[PARENTS[j]]) ** 2)
        a, b, c = u @ u, -2 * (u @ p), p @ p - length2
        disc = b * b - 4 * a * c
        if j == joint:  # the other root of a s^2 + b s + c = 0, given that s = 1 is one root
            roots = [c / a]
        elif disc >= 0:
            roots = [(-b + np.sqrt(disc)) / (2 * a), (-b - np.sqrt(disc)) / (2 * a)]
        else:
            roots = [-b / (2 * a)]
        new[j] = min((s * u for s in roots), key=lambda q: np.sum((q - target[j]) ** 2))
    pose[subtree] = new[subtree] - np.array([0.0, 0.0, t])
    return pose


# ----------------------------------------------------------------------------------------------------
# matplotlib
# ----------------------------------------------------------------------------------------------------
def _side(child: int) -> str:
    return "left" if child in LEFT_JOINTS else "right" if child in RIGHT_JOINTS else "torso"


def plot_skeleton_3d(ax, pose, color=None, label=None, alpha: float = 1.0, linestyle: str = "-",
                     linewidth: float = 2.0, markersize: float = 3.0):
    """Draw one 3D pose (17, 3) on a matplotlib 3D axis, as the camera sees it (depth into the page).

    ``color=None`` colours left/right/torso bones by :data:`SIDE_COLORS`; otherwise one colour. Axis
    limits grow to keep every pose drawn on ``ax`` visible, with equal scale on all axes."""
    pose = _poses(pose, "pose")
    if pose.ndim != 2:
        raise ValueError(f"plot_skeleton_3d: pose must be one (17, 3) pose, got {pose.shape}")
    x, y, z = pose[:, 0], pose[:, 2], -pose[:, 1]  # matplotlib's vertical axis is up = -y
    for i, (p, c) in enumerate(BONES):  # the legend label goes on a bone if one colour, else on the joints
        ax.plot([x[p], x[c]], [y[p], y[c]], [z[p], z[c]], color=color or SIDE_COLORS[_side(c)], alpha=alpha,
                linestyle=linestyle, linewidth=linewidth, label=label if (i == 0 and color) else None)
    ax.plot(x, y, z, "o", color=color or SIDE_COLORS["torso"], markersize=markersize, alpha=alpha,
            label=None if color else label)
    lo, hi = pose.min(0)[[0, 2, 1]], pose.max(0)[[0, 2, 1]]
    lo[2], hi[2] = -hi[2], -lo[2]
    if hasattr(ax, "_itespy_box"):
        lo, hi = np.minimum(lo, ax._itespy_box[0]), np.maximum(hi, ax._itespy_box[1])
    ax._itespy_box = (lo, hi)
    centre, half = (lo + hi) / 2, max((hi - lo).max() / 2, 1e-9) * 1.05
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    ax.set_box_aspect((1, 1, 1))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("x")
    ax.set_ylabel("depth z")
    ax.set_zlabel("up (−y)")
    return ax


def plot_skeleton_2d(ax, kp2d, color=None, label=None, alpha: float = 1.0, linestyle: str = "-",
                     linewidth: float = 2.0, markersize: float = 3.0):
    """Draw one 2D pose (17, 2) (image coordinates: x right, y down) on a matplotlib axis, equal aspect."""
    kp2d = _poses(kp2d, "kp2d", dims=(2,))
    if kp2d.ndim != 2:
        raise ValueError(f"plot_skeleton_2d: kp2d must be one (17, 2) pose, got {kp2d.shape}")
    for i, (p, c) in enumerate(BONES):
        ax.plot(kp2d[[p, c], 0], kp2d[[p, c], 1], color=color or SIDE_COLORS[_side(c)], alpha=alpha,
                linestyle=linestyle, linewidth=linewidth, label=label if (i == 0 and color) else None)
    ax.plot(kp2d[:, 0], kp2d[:, 1], "o", color=color or SIDE_COLORS["torso"], alpha=alpha, markersize=markersize,
            label=None if color else label)
    ax.set_aspect("equal", adjustable="datalim")
    if not ax.yaxis_inverted():
        ax.invert_yaxis()
    return ax


def _figure(*args, **kwargs):
    import matplotlib.pyplot as plt  # deferred: importing itespy.viz must not pick a backend
    return plt.figure(*args, **kwargs)


def skeleton_grid(poses, titles=None, path=None, ncols: int | None = None, view: str = "3d", colors=None,
                  suptitle: str | None = None, panel_size: float = 2.4, elev: float = 12, azim: float = -55):
    """Gallery of skeletons (e.g. dictionary atoms): one panel per pose; returns the matplotlib figure.

    poses: (M, 17, 3) (or (M, 17, 2) with ``view="2d"``); ``view="2d"`` draws (x, y) only.
    ``colors``: None (left/right/torso), one colour, or one per pose. Saved to ``path`` if given."""
    poses = _poses(poses, "poses", dims=(2, 3) if view == "2d" else (3,))
    if poses.ndim == 2:
        poses = poses[None]
    m = len(poses)
    ncols = ncols or min(m, 6)
    nrows = -(-m // ncols)
    fig = _figure(figsize=(panel_size * ncols, panel_size * nrows + (0.4 if suptitle else 0)))
    for i, pose in enumerate(poses):
        col = colors[i] if isinstance(colors, (list, tuple)) else colors
        if view == "3d":
            ax = fig.add_subplot(nrows, ncols, i + 1, projection="3d")
            plot_skeleton_3d(ax, pose, color=col, linewidth=1.5, markersize=2)
            ax.view_init(elev=elev, azim=azim)
            ax.set_xticklabels([]), ax.set_yticklabels([]), ax.set_zticklabels([])
            ax.set_xlabel(""), ax.set_ylabel(""), ax.set_zlabel("")
        elif view == "2d":
            ax = fig.add_subplot(nrows, ncols, i + 1)
            plot_skeleton_2d(ax, pose[:, :2], color=col, linewidth=1.5, markersize=2)
            ax.set_xticks([]), ax.set_yticks([])
        else:
            raise ValueError(f"skeleton_grid: view must be '3d' or '2d', got {view!r}")
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig, path, svg: bool = False, dpi: int = 110) -> Path:
    """Write a matplotlib figure to ``path`` (PNG; with ``svg=True`` also ``path`` with suffix .svg).

    Atomic (temporary file in the same folder, then ``os.replace``) and byte-reproducible (no software or
    date stamp), so re-running a notebook does not churn committed figures. Returns the PNG path."""
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    targets = [(path, "png", {"Software": None})] + ([(path.with_suffix(".svg"), "svg", {"Date": None})] if svg else [])
    for target, fmt, metadata in targets:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata, bbox_inches="tight")
            os.chmod(tmp, 0o644)  # mkstemp creates 0600
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return path


# ----------------------------------------------------------------------------------------------------
# plotly
# ----------------------------------------------------------------------------------------------------
IMAGE_VIEW_CAMERA = dict(up=dict(x=0, y=-1, z=0), eye=dict(x=0.9, y=-0.5, z=-1.6), center=dict(x=0, y=0, z=0))


def _segments(pose: np.ndarray, bones) -> list[list]:
    """Per-axis coordinate lists of the given bones, separated by None (plotly line gaps)."""
    out = [[], [], []][: pose.shape[1]]
    for p, c in bones:
        for axis, coords in enumerate(out):
            coords += [float(pose[p, axis]), float(pose[c, axis]), None]
    return out


_GROUPS = {side: [b for b in BONES if _side(b[1]) == side] for side in ("torso", "left", "right")}


def _skeleton_traces(pose: np.ndarray, name: str, color=None, opacity: float = 1.0, dash=None,
                     scene: str | None = None) -> list:
    """Four plotly traces for one pose: torso/left/right bones (named ``name·side``) and the joints
    (named ``name``, 17 markers in joint order). 3D (Scatter3d) for (17, 3), 2D (Scatter) for (17, 2)."""
    import plotly.graph_objects as go
    three_d = pose.shape[1] == 3
    kind = go.Scatter3d if three_d else go.Scatter
    extra = {"scene": scene} if (three_d and scene) else {}
    traces = []
    for side, bones in _GROUPS.items():
        xyz = _segments(pose, bones)
        traces.append(kind(**dict(zip("xyz", xyz)), mode="lines", name=f"{name}·{side}", legendgroup=name,
                           showlegend=False, opacity=opacity, hoverinfo="skip",
                           line=dict(color=color or SIDE_COLORS[side], width=5 if three_d else 3, dash=dash),
                           **extra))
    traces.append(kind(**dict(zip("xyz", pose.T.tolist())), mode="markers", name=name, legendgroup=name,
                       opacity=opacity, text=list(JOINT_NAMES), hoverinfo="text+name",
                       marker=dict(color=color or SIDE_COLORS["torso"], size=3 if three_d else 5), **extra))
    return traces


def _set_traces(fig, start: int, pose: np.ndarray) -> None:
    """Overwrite the coordinates of the four traces made by :func:`_skeleton_traces` at ``start``."""
    for k, bones in enumerate(_GROUPS.values()):
        for axis, coords in zip("xyz", _segments(pose, bones)):
            fig.data[start + k][axis] = coords
    for axis, coords in zip("xyz", pose.T.tolist()):
        fig.data[start + 3][axis] = coords


def _scene_layout(radius: float, eye=None) -> dict:
    rng = [-radius, radius]
    axes = {f"{a}axis": dict(range=rng, title=title, zeroline=False) for a, title in
            zip("xyz", ("x", "y (down)", "z (depth)"))}
    return dict(**axes, aspectmode="cube", camera=dict(IMAGE_VIEW_CAMERA, **({"eye": eye} if eye else {})))


def skeleton_figure(poses: dict, title: str | None = None, colors: dict | None = None, eye: dict | None = None,
                    widget: bool = False, height: int = 450):
    """Plotly 3D figure of several named poses ``{name: (17, 3)}`` sharing one equal-aspect scene.

    The camera looks the way the image does (x right, y down, depth z into the screen), slightly from the
    side (``eye``: plotly camera eye). The first pose is coloured left/right/torso, the others get one
    colour each unless ``colors`` says otherwise. ``widget=True`` returns a ``go.FigureWidget``."""
    import plotly.graph_objects as go
    if not isinstance(poses, dict) or not poses:
        raise ValueError("skeleton_figure: poses must be a non-empty dict {name: (17, 3) pose}")
    arrays = {name: _poses(p, f"poses[{name!r}]").reshape(NUM_JOINTS, 3) for name, p in poses.items()}
    colors = dict(colors or {})
    fig = go.FigureWidget() if widget else go.Figure()
    for i, (name, pose) in enumerate(arrays.items()):
        default = None if i == 0 else POSE_PALETTE[(i - 1) % len(POSE_PALETTE)]
        fig.add_traces(_skeleton_traces(pose, name, color=colors.get(name, default)))
    radius = 1.1 * max(np.abs(p).max() for p in arrays.values())
    fig.update_layout(scene=_scene_layout(radius, eye), title=title, height=height,
                      margin=dict(l=0, r=0, t=40 if title else 10, b=0))
    return fig


def _panel_2d_layout(limit: float, title: str) -> dict:
    return dict(title=title, xaxis=dict(range=[-limit, limit], zeroline=False, title="u"),
                yaxis=dict(range=[limit, -limit], scaleanchor="x", zeroline=False, title="v (down)"),
                margin=dict(l=40, r=10, t=40, b=40), showlegend=True)


# ----------------------------------------------------------------------------------------------------
# Widgets
# ----------------------------------------------------------------------------------------------------
# Why not plotly's FigureWidget: its front-end module is the whole 5 MB plotly bundle, loaded anew for every
# figure, and anywidget (0.9-0.11) gives a model 2 s to load its module; past that the model silently drops
# every message from Python. On a busy 2-core machine the widgets then stay blank and ignore their sliders
# (seen in JupyterLab + Chromium, tests/test_browser.py). PlotlyView's module is tiny: plotly.js travels as a
# plain trait, is evaluated once per page when the first view renders, and views redraw with Plotly.react.
_PLOTLY_VIEW_ESM = """
function plotlyLibrary(source) {
  if (!globalThis.__itespyPlotly) {
    const module = { exports: {} };
    new Function("module", "exports", source)(module, module.exports);
    globalThis.__itespyPlotly = module.exports;
  }
  return globalThis.__itespyPlotly;
}
export default {
  render({ model, el }) {
    const Plotly = plotlyLibrary(model.get("_plotly_js"));
    const div = document.createElement("div");
    el.appendChild(div);
    const draw = () => Plotly.react(div, structuredClone(model.get("figure_data")),
      { ...structuredClone(model.get("figure_layout")), uirevision: "itespy" }, { displaylogo: false });
    draw();
    model.on("change:figure_data", draw);
    model.on("change:figure_layout", draw);
    return () => {
      model.off("change:figure_data", draw);
      model.off("change:figure_layout", draw);
      Plotly.purge(div);
    };
  },
};
"""
_PLOTLY_JS: list = []


def _plotly_js() -> str:
    if not _PLOTLY_JS:
        from plotly.offline import get_plotlyjs
        _PLOTLY_JS.append(get_plotlyjs())
    return _PLOTLY_JS[0]


class PlotlyView(anywidget.AnyWidget):
    """Shows a plotly figure in the notebook; ``show(fig)`` sends the figure's current data and layout (only
    what changed travels). The user's camera/zoom survive redraws (``uirevision``)."""

    _esm = _PLOTLY_VIEW_ESM
    figure_data = traitlets.List().tag(sync=True)
    figure_layout = traitlets.Dict().tag(sync=True)
    _plotly_js = traitlets.Unicode().tag(sync=True)

    def __init__(self, fig=None, **kwargs):
        super().__init__(_plotly_js=_plotly_js(), **kwargs)
        if fig is not None:
            self.show(fig)

    def show(self, fig) -> "PlotlyView":
        spec = json.loads(fig.to_json())
        self.figure_layout = spec.get("layout", {})
        self.figure_data = spec.get("data", [])
        return self


def _as_sequence(poses, name: str) -> np.ndarray:
    poses = _poses(poses, name)
    return poses[None] if poses.ndim == 2 else poses.reshape(-1, NUM_JOINTS, 3)


def posed_view(pose, yaw=0.0, pitch=0.0, roll=0.0, t=geometry.ROOT_DISTANCE, flip=None, flip_mode="ray"):
    """What :func:`rotation_widget` shows: (3D pose R·pose with an optional depth flip, its 2D P(·)).

    pose: (17, 3) root-centred, model units; angles in degrees; ``flip``: joint index or None."""
    posed = rotate_pose(pose, euler_rotation(yaw, pitch, roll))
    if flip is not None:
        posed = flip_joint_depth(posed, flip, t=t, mode=flip_mode)
    return posed, project_pose(posed, t)


class RotationWidget(widgets.VBox):
    """Interactive rotation of a skeleton and its perspective projection (see :func:`rotation_widget`).

    An ipywidgets VBox (display it). Attributes: ``fig3d`` and ``fig2d`` (plotly Figures, shown by the
    :class:`PlotlyView` widgets ``view3d`` / ``view2d``), ``sliders`` (dict name -> control: yaw, pitch, roll
    [degrees], t [model units], flip, flip_mode, orthographic, and sample for sequences), ``pose_3d`` / ``pose_2d``
    (what is drawn now), ``state`` (current control values), ``update(**values)``."""

    def __init__(self, poses, t: float = geometry.ROOT_DISTANCE, yaw=0.0, pitch=0.0, roll=0.0, flip=None,
                 flip_mode="ray", sample: int = 0, orthographic: bool = False, height: int = 420):
        w = widgets
        import plotly.graph_objects as go
        self.poses = _as_sequence(poses, "pose_3d")
        s = dict(continuous_update=True, layout=w.Layout(width="320px"))
        self.sliders = {
            "yaw": w.FloatSlider(value=yaw, min=-180, max=180, step=5, description="yaw °", **s),
            "pitch": w.FloatSlider(value=pitch, min=-90, max=90, step=5, description="pitch °", **s),
            "roll": w.FloatSlider(value=roll, min=-180, max=180, step=5, description="roll °", **s),
            "t": w.FloatSlider(value=t, min=min(2.0, t), max=max(20.0, t), step=0.5, description="distance t", **s),
            "flip": w.Dropdown(options=list(FLIP_CHOICES), value=flip, description="depth flip"),
            "flip_mode": w.ToggleButtons(options=["ray", "mirror"], value=flip_mode, description="flip by",
                                         tooltips=["slide along the camera ray: 2D unchanged",
                                                   "mirror about the parent's depth plane"]),
            "orthographic": w.Checkbox(value=orthographic, description="show orthographic 2D"),
        }
        if len(self.poses) > 1:
            self.sliders["sample"] = w.IntSlider(value=sample, min=0, max=len(self.poses) - 1,
                                                 description="sample", **s)
        radius = 1.1 * np.linalg.norm(self.poses, axis=-1).max()
        base = self.poses[sample]
        self.fig3d = go.Figure(layout=dict(scene=_scene_layout(radius), height=height, width=height,
                                           margin=dict(l=0, r=0, t=30, b=0), title="3D (camera frame)"))
        self.fig2d = go.Figure(layout=dict(height=height, width=height, **_panel_2d_layout(
            1.15 * radius / max(t - radius, 1.0), "2D: P(Y) = (x, y) / max(1, t + z)")))
        for fig, dims in ((self.fig3d, 3), (self.fig2d, 2)):
            fig.add_traces(_skeleton_traces(base[:, :dims], "unflipped", color="#bbbbbb", dash="dot"))
            fig.add_traces(_skeleton_traces(base[:, :dims], "pose"))
        self.fig2d.add_traces(_skeleton_traces(base[:, :2], "orthographic", color="#2ca02c", dash="dash"))
        self._quiet = False
        for control in self.sliders.values():
            control.observe(self._on_change, names="value")
        self.view3d, self.view2d = PlotlyView(), PlotlyView()
        super().__init__([w.HBox([self.view3d, self.view2d]), w.HBox([
            w.VBox([self.sliders[k] for k in ("yaw", "pitch", "roll", "t")]),
            w.VBox([self.sliders[k] for k in ("flip", "flip_mode", "orthographic")]
                   + ([self.sliders["sample"]] if "sample" in self.sliders else []))])])
        self.redraw()

    @property
    def state(self) -> dict:
        """Current control values, e.g. {'yaw': 30.0, ..., 'flip': 13, 'flip_mode': 'ray', 'sample': 0}."""
        return {k: c.value for k, c in self.sliders.items()} | {"sample": self.sliders["sample"].value
                                                                 if "sample" in self.sliders else 0}

    def update(self, **values) -> "RotationWidget":
        """Set several controls at once (e.g. ``update(yaw=30, flip=13)``) and redraw once."""
        unknown = set(values) - set(self.sliders)
        if unknown:
            raise ValueError(f"update: unknown control(s) {sorted(unknown)}; known: {sorted(self.sliders)}")
        self._quiet = True
        try:
            for k, v in values.items():
                self.sliders[k].value = v
        finally:
            self._quiet = False
        self.redraw()
        return self

    def _on_change(self, _change) -> None:
        if not self._quiet:
            self.redraw()

    def redraw(self) -> None:
        """Recompute ``pose_3d`` / ``pose_2d`` from the controls and push them into both figures."""
        st = self.state
        pose = self.poses[st["sample"]]
        self.pose_unflipped, _ = posed_view(pose, st["yaw"], st["pitch"], st["roll"], st["t"])
        self.pose_3d, self.pose_2d = posed_view(pose, st["yaw"], st["pitch"], st["roll"], st["t"],
                                                st["flip"], st["flip_mode"])
        ghost = st["flip"] is not None
        with self.fig3d.batch_update(), self.fig2d.batch_update():
            _set_traces(self.fig3d, 0, self.pose_unflipped)
            _set_traces(self.fig3d, 4, self.pose_3d)
            _set_traces(self.fig2d, 0, project_pose(self.pose_unflipped, st["t"]))
            _set_traces(self.fig2d, 4, self.pose_2d)
            _set_traces(self.fig2d, 8, project_pose(self.pose_3d, st["t"], "orthographic"))
            for fig in (self.fig3d, self.fig2d):
                for tr in fig.data[:4]:
                    tr.visible = ghost
            for tr in self.fig2d.data[8:12]:
                tr.visible = st["orthographic"]
        self.view3d.show(self.fig3d)
        self.view2d.show(self.fig2d)


def rotation_static(pose, yaw=0.0, pitch=0.0, roll=0.0, t=geometry.ROOT_DISTANCE, flip=None, flip_mode="ray",
                    sample: int = 0, orthographic: bool = False, path=None, elev: float = 12, azim: float = -55):
    """Matplotlib twin of :func:`rotation_widget`: 3D view + perspective 2D for one setting of the controls
    (angles in degrees, t in model units). A flipped pose is drawn over a dashed grey unflipped one."""
    pose = _as_sequence(pose, "pose_3d")[sample]
    posed, kp = posed_view(pose, yaw, pitch, roll, t, flip, flip_mode)
    fig = _figure(figsize=(8.5, 4.2))
    ax3, ax2 = fig.add_subplot(1, 2, 1, projection="3d"), fig.add_subplot(1, 2, 2)
    if flip is not None:
        ghost, _ = posed_view(pose, yaw, pitch, roll, t)
        plot_skeleton_3d(ax3, ghost, color="#888888", linestyle="--", label="unflipped")
        plot_skeleton_2d(ax2, project_pose(ghost, t), color="#888888", linestyle="--", label="unflipped")
    plot_skeleton_3d(ax3, posed, label=None if flip is None else f"flipped ({flip_mode})")
    plot_skeleton_2d(ax2, kp, label="perspective")
    if orthographic:
        plot_skeleton_2d(ax2, project_pose(posed, t, "orthographic"), color="#2ca02c", linestyle="--",
                         label="orthographic")
    ax3.view_init(elev=elev, azim=azim)
    ax3.set_title(f"3D, yaw {yaw:g}°, pitch {pitch:g}°, roll {roll:g}°", fontsize=10)
    ax2.set_title(f"2D projection, t = {t:g}", fontsize=10)
    if flip is not None or orthographic:
        ax2.legend(fontsize=8)
    if flip is not None:
        ax3.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def rotation_widget(pose_3d, t: float = geometry.ROOT_DISTANCE, static: bool = False, **initial):
    """Sliders yaw/pitch/roll [degrees], camera distance t [model units], a limb depth flip, and a sample
    index when ``pose_3d`` is a sequence (S, 17, 3), linked to a 3D view and the 2D projection.

    pose_3d: root-centred pose(s) in model units. ``initial``: starting control values (yaw=, flip=13, ...).
    Returns a :class:`RotationWidget` (display it; ``.sliders``, ``.fig3d``, ``.fig2d``, ``.update``);
    with ``static=True`` a matplotlib figure of the same view (:func:`rotation_static`)."""
    if static:
        return rotation_static(pose_3d, t=t, **initial)
    return RotationWidget(pose_3d, t=t, **initial)


def _named_sequences(gt, teacher, student) -> dict:
    named = {k: v for k, v in (("ground truth", gt), ("teacher", teacher), ("student", student)) if v is not None}
    if not named:
        raise ValueError("compare: give at least one of gt, teacher, student")
    out = {k: _as_sequence(v, k) for k, v in named.items()}
    lengths = {len(v) for v in out.values()}
    if len(lengths) != 1:
        raise ValueError(f"compare: gt/teacher/student must have the same number of samples, got "
                         f"{ {k: len(v) for k, v in out.items()} }")
    return out


def _panel_title(name: str, pose: np.ndarray, gt: np.ndarray | None, unit: str) -> str:
    if gt is None or name == "ground truth":
        return name
    err = np.linalg.norm(pose - gt, axis=-1).mean()
    return f"{name}: mean joint error {err:.3g} {unit}"


class CompareWidget(widgets.VBox):
    """Side-by-side ground truth / teacher / student with a sample slider and a shared view rotation.

    An ipywidgets VBox. Attributes: ``fig3d`` (one plotly Figure, one 3D scene per pose), ``fig2d`` (the 2D input,
    or None), ``view3d`` / ``view2d`` (the :class:`PlotlyView` widgets showing them), ``sliders`` (sample, yaw,
    pitch), ``state``, ``update(**values)``, ``posed`` (dict of drawn 3D)."""

    def __init__(self, gt, teacher, student, kp2d=None, unit: str = "mm", height: int = 380):
        w = widgets
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
        self.sequences = _named_sequences(gt, teacher, student)
        self.kp2d = None if kp2d is None else _poses(kp2d, "kp2d", dims=(2,)).reshape(-1, NUM_JOINTS, 2)
        n = len(next(iter(self.sequences.values())))
        if self.kp2d is not None and len(self.kp2d) != n:
            raise ValueError(f"compare: kp2d has {len(self.kp2d)} samples, the poses have {n}")
        self.unit, names = unit, list(self.sequences)
        s = dict(continuous_update=True, layout=w.Layout(width="320px"))
        self.sliders = {"sample": w.IntSlider(value=0, min=0, max=n - 1, description="sample", **s),
                        "yaw": w.FloatSlider(value=0, min=-180, max=180, step=5, description="yaw °", **s),
                        "pitch": w.FloatSlider(value=0, min=-90, max=90, step=5, description="pitch °", **s)}
        base = make_subplots(rows=1, cols=len(names), specs=[[{"type": "scene"}] * len(names)],
                             subplot_titles=names, horizontal_spacing=0.02)
        self.fig3d = go.Figure(base)
        radius = 1.1 * max(np.linalg.norm(v, axis=-1).max() for v in self.sequences.values())
        for i, name in enumerate(names):
            scene = "scene" if i == 0 else f"scene{i + 1}"
            self.fig3d.add_traces(_skeleton_traces(self.sequences[name][0], name, scene=scene))
            self.fig3d.layout[scene].update(_scene_layout(radius))
        self.fig3d.update_layout(height=height, width=330 * len(names), showlegend=False,
                                 margin=dict(l=0, r=0, t=40, b=0))
        self.fig2d = self.view2d = None
        self.view3d = PlotlyView()
        children = [self.view3d]
        if self.kp2d is not None:
            layout = _panel_2d_layout(1.1 * np.abs(self.kp2d).max(), "2D input") | dict(showlegend=False)
            self.fig2d = go.Figure(layout=dict(height=height, width=height, **layout))
            self.fig2d.add_traces(_skeleton_traces(self.kp2d[0], "input"))
            self.view2d = PlotlyView()
            children.append(self.view2d)
        self._quiet = False
        for control in self.sliders.values():
            control.observe(self._on_change, names="value")
        super().__init__([w.HBox(children), w.HBox(list(self.sliders.values()))])
        self.redraw()

    state = RotationWidget.state
    update = RotationWidget.update
    _on_change = RotationWidget._on_change

    def redraw(self) -> None:
        st = self.state
        rot = euler_rotation(st["yaw"], st["pitch"])
        self.posed = {k: rotate_pose(v[st["sample"]], rot) for k, v in self.sequences.items()}
        gt = self.posed.get("ground truth")
        with self.fig3d.batch_update():
            for i, (name, pose) in enumerate(self.posed.items()):
                _set_traces(self.fig3d, 4 * i, pose)
                self.fig3d.layout.annotations[i].text = _panel_title(name, pose, gt, self.unit)
            if self.fig2d is not None:
                _set_traces(self.fig2d, 0, self.kp2d[st["sample"]])
        self.view3d.show(self.fig3d)
        if self.view2d is not None:
            self.view2d.show(self.fig2d)


def compare_static(gt, teacher, student, kp2d=None, index: int = 0, yaw: float = 0.0, pitch: float = 0.0,
                   unit: str = "mm", path=None, elev: float = 12, azim: float = -55):
    """Matplotlib twin of :func:`compare_widget` for sample ``index`` (view rotation in degrees)."""
    seqs = _named_sequences(gt, teacher, student)
    rot = euler_rotation(yaw, pitch)
    posed = {k: rotate_pose(v[index], rot) for k, v in seqs.items()}
    ncols = len(posed) + (kp2d is not None)
    fig = _figure(figsize=(3.3 * ncols, 3.6))
    for i, (name, pose) in enumerate(posed.items()):
        ax = fig.add_subplot(1, ncols, i + 1, projection="3d")
        plot_skeleton_3d(ax, pose)
        ax.view_init(elev=elev, azim=azim)
        ax.set_title(_panel_title(name, pose, posed.get("ground truth"), unit), fontsize=9)
    if kp2d is not None:
        ax = fig.add_subplot(1, ncols, ncols)
        plot_skeleton_2d(ax, _poses(kp2d, "kp2d", dims=(2,)).reshape(-1, NUM_JOINTS, 2)[index])
        ax.set_title("2D input", fontsize=9)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def compare_widget(gt, teacher, student, kp2d=None, unit: str = "mm", static: bool = False, **static_kwargs):
    """Ground truth, teacher and student 3D poses (S, 17, 3) side by side (any may be None), with a sample
    slider and a shared yaw/pitch [degrees] of the view; ``kp2d`` (S, 17, 2) adds the 2D input panel.
    Panel titles give each prediction's mean joint error against the ground truth in ``unit``.
    Returns a :class:`CompareWidget`, or with ``static=True`` a matplotlib figure (:func:`compare_static`)."""
    if static:
        return compare_static(gt, teacher, student, kp2d=kp2d, unit=unit, **static_kwargs)
    return CompareWidget(gt, teacher, student, kp2d=kp2d, unit=unit)


# ----------------------------------------------------------------------------------------------------
# Training diagnostics (notebooks 00, 03, 04): loss curves, error bars, joint-by-joint matrices,
# predictions brought to the ground truth's scale, body orientation
# ----------------------------------------------------------------------------------------------------
LOSS_LABELS = {"loss_total": "total", "loss_rep": r"$\mathcal{L}_{REP}$", "loss_ric": r"$\mathcal{L}_{RIC}$",
               "loss_kd": r"$\mathcal{L}_{KD}$", "loss_rec": r"$\mathcal{L}_{REC}$",
               "loss_canon": r"$\mathcal{L}_{canon}$"}
JOINT_SHORT_NAMES = ("Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Neck",
                     "Head", "LSho", "LElb", "LWri", "RSho", "RElb", "RWri")


def plot_loss_curves(history, keys=None, ax=None, path=None, title: str | None = None, logy: bool = True,
                     weights: dict | None = None):
    """Per-epoch losses of one training stage (the records of ``history_teacher.json`` /
    ``history_student.json``: dicts with ``epoch`` and ``loss_*`` entries) on one matplotlib axis.

    ``keys``: which ``loss_*`` entries to draw (default: all but ``loss_total``); ``weights``: optional
    {key: λ} to draw λ·loss instead (the terms as they enter the total). Returns the figure."""
    records = list(history)
    if not records:
        raise ValueError("plot_loss_curves: the history is empty (no epoch was trained)")
    available = [k for k in records[0] if k.startswith("loss_")]
    keys = [k for k in available if k != "loss_total"] if keys is None else list(keys)
    missing = [k for k in keys if k not in available]
    if missing:
        raise ValueError(f"plot_loss_curves: history has no {missing}; available: {available}")
    if ax is None:
        fig = _figure(figsize=(5.0, 3.4))
        ax = fig.add_subplot(1, 1, 1)
    epochs = [r["epoch"] for r in records]
    for k in keys:
        w = (weights or {}).get(k, 1.0)
        label = LOSS_LABELS.get(k, k)
        ax.plot(epochs, [w * r[k] for r in records], "o-", label=label if w == 1.0 else f"{w:g} · {label}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean loss per batch")
    ax.set_xticks(epochs)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    if path is not None:
        save_figure(ax.figure, path)
    return ax.figure


def plot_error_bars(errors: dict, labels=None, ax=None, path=None, unit: str = "mm", title: str | None = None,
                    ylabel: str | None = None):
    """Grouped bar chart of errors ``{model name: values}``, one group per label.

    values: a sequence (one per label; 17 values default to the joint names) or a dict {label: value}
    (e.g. a metrics ``per_action`` dict; labels then default to the first dict's keys). Returns the figure."""
    if not isinstance(errors, dict) or not errors:
        raise ValueError("plot_error_bars: errors must be a non-empty dict {name: values}")
    first = next(iter(errors.values()))
    if labels is None:
        labels = list(first) if isinstance(first, dict) else (
            list(JOINT_SHORT_NAMES) if len(first) == NUM_JOINTS else [str(i) for i in range(len(first))])
    table = {}
    for name, values in errors.items():
        row = [values[k] for k in labels] if isinstance(values, dict) else list(values)
        if len(row) != len(labels):
            raise ValueError(f"plot_error_bars: {name!r} has {len(row)} values for {len(labels)} labels")
        table[name] = np.asarray(row, dtype=np.float64)
    if ax is None:
        fig = _figure(figsize=(max(5.0, 0.45 * len(labels) * max(1, len(table)) ** 0.5 + 1.5), 3.4))
        ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(table)
    x = np.arange(len(labels))
    for i, (name, row) in enumerate(table.items()):
        ax.bar(x + (i - (len(table) - 1) / 2) * width, row, width, label=name,
               color=POSE_PALETTE[i % len(POSE_PALETTE)])
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel or f"error ({unit})")
    if title:
        ax.set_title(title, fontsize=10)
    if len(table) > 1:
        ax.legend(fontsize=8)
    ax.figure.tight_layout()
    if path is not None:
        save_figure(ax.figure, path)
    return ax.figure


def plot_joint_matrix(matrix, ax=None, title: str | None = None, cmap: str = "viridis", vmin=None, vmax=None,
                      labels: bool = True, colorbar: bool = True):
    """Heatmap of a joint-by-joint matrix (17, 17), e.g. an adjacency A, ρ(M_d ⊙ A) (Eq. 4) or an
    affinity ρ(Hᵀ W1ᵀ W2 H) (Eq. 5). Entry [i, j] is row i (source joint), column j (output joint).
    Returns the matplotlib image."""
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (NUM_JOINTS, NUM_JOINTS):
        raise ValueError(f"plot_joint_matrix: expected a ({NUM_JOINTS}, {NUM_JOINTS}) matrix, got {matrix.shape}")
    if ax is None:
        ax = _figure(figsize=(4.4, 3.8)).add_subplot(1, 1, 1)
    image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax)
    ticks = np.arange(NUM_JOINTS)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    if labels:
        ax.set_xticklabels(JOINT_SHORT_NAMES, rotation=90, fontsize=6)
        ax.set_yticklabels(JOINT_SHORT_NAMES, fontsize=6)
    else:
        ax.set_xticklabels([])
        ax.set_yticklabels([])
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
    return image


def joint_matrix_grid(matrices, titles=None, ncols: int | None = None, path=None, suptitle: str | None = None,
                      cmap: str = "viridis", shared_scale: bool = False, panel_size: float = 3.2):
    """Several (17, 17) matrices side by side (:func:`plot_joint_matrix`); ``shared_scale`` gives all panels
    one colour range. Returns the figure (saved to ``path`` if given)."""
    mats = [np.asarray(m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else m, np.float64)
            for m in matrices]
    if not mats:
        raise ValueError("joint_matrix_grid: no matrices to draw")
    ncols = ncols or min(len(mats), 4)
    nrows = -(-len(mats) // ncols)
    fig = _figure(figsize=(panel_size * ncols + 0.3, panel_size * nrows + (0.4 if suptitle else 0)))
    lo, hi = (min(m.min() for m in mats), max(m.max() for m in mats)) if shared_scale else (None, None)
    for i, m in enumerate(mats):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        plot_joint_matrix(m, ax=ax, title=None if titles is None else titles[i], cmap=cmap, vmin=lo, vmax=hi,
                          labels=i % ncols == 0 or ncols == 1)
        if i % ncols != 0:  # column labels on every panel, row labels only on the first column
            ax.set_xticklabels(JOINT_SHORT_NAMES, rotation=90, fontsize=6)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def to_ground_truth_scale(pred, gt, flip: bool = True) -> np.ndarray:
    """Predictions (N, 17, 3) in model units brought into the ground truth's units for display, the way the
    ``mpjpe_scaled_flip`` protocol measures them: root-centred, the per-sample Procrustes-optimal scale
    (:func:`itespy.metrics.procrustes_align`; no rotation), and with ``flip`` the depth mirror
    (:func:`itespy.metrics.depth_flip`) where that is closer. The mean joint distance of the result to
    ``gt`` is the protocol's per-sample error."""
    from . import metrics
    pred = geometry.root_centre(_poses(pred, "pred").reshape(-1, NUM_JOINTS, 3))
    gt = geometry.root_centre(_poses(gt, "gt").reshape(-1, NUM_JOINTS, 3))
    if pred.shape != gt.shape:
        raise ValueError(f"to_ground_truth_scale: pred {pred.shape} and gt {gt.shape} differ in shape")
    candidates = [pred] + ([metrics.depth_flip(pred)] if flip else [])
    scaled = [metrics.procrustes_align(c, gt)[1][:, None, None] * c for c in candidates]
    errors = np.stack([np.linalg.norm(s - gt, axis=-1).mean(-1) for s in scaled])  # (1 or 2, N)
    return np.stack(scaled)[errors.argmin(0), np.arange(len(gt))]


def body_forward(poses) -> np.ndarray:
    """Unit vector (N, 3) the body faces (chest normal): across = LHip − RHip, up = Thorax − Hip,
    forward = across × up. For a subject facing the camera (camera frame, y down) it is (0, 0, −1).
    Defined by the body alone, so it rotates with the pose: R·pose faces R·forward."""
    poses = _poses(poses, "poses").reshape(-1, NUM_JOINTS, 3)
    across = poses[:, 4] - poses[:, 1]  # LHip - RHip
    up = poses[:, 8] - poses[:, 0]  # Thorax - Hip
    forward = np.cross(across, up)
    return forward / np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-12)


def body_heading(poses) -> np.ndarray:
    """Heading (N,) in degrees, (−180, 180], of the body about the camera's vertical (y) axis: 0 when the
    subject faces the camera, +90 when it faces the image's right (+x), ±180 when it turns its back."""
    f = body_forward(poses)
    return np.degrees(np.arctan2(f[:, 0], -f[:, 2]))


def direction_concentration(vectors) -> float:
    """Length of the mean of unit vectors (N, 3): 1 when all point the same way, near 0 when they are
    spread evenly. Independent of the frame, so it compares camera-frame and canonical poses fairly."""
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    return float(np.linalg.norm(v.mean(0)))
