"""Plotly building blocks: skeleton traces (torso/left/right bones and joints), scene and 2D panel layouts,
and :func:`skeleton_figure` (several named poses in one 3D scene).
"""
from __future__ import annotations

import numpy as np

from ..skeleton import BONES, JOINT_NAMES, NUM_JOINTS
from .poses import POSE_PALETTE, SIDE_COLORS, as_pose_array, joint_side


# ----------------------------------------------------------------------------------------------------
# plotly
# ----------------------------------------------------------------------------------------------------
IMAGE_VIEW_CAMERA = dict(up=dict(x=0, y=-1, z=0), eye=dict(x=0.9, y=-0.5, z=-1.6), center=dict(x=0, y=0, z=0))


def skeleton_segments(pose: np.ndarray, bones) -> list[list]:
    """Per-axis coordinate lists of the given bones, separated by None (plotly line gaps)."""
    out = [[], [], []][: pose.shape[1]]
    for p, c in bones:
        for axis, coords in enumerate(out):
            coords += [float(pose[p, axis]), float(pose[c, axis]), None]
    return out


SKELETON_GROUPS = {side: [b for b in BONES if joint_side(b[1]) == side] for side in ("torso", "left", "right")}


def skeleton_traces(pose: np.ndarray, name: str, color=None, opacity: float = 1.0, dash=None,
                     scene: str | None = None) -> list:
    """Four plotly traces for one pose: torso/left/right bones (named ``name·side``) and the joints
    (named ``name``, 17 markers in joint order). 3D (Scatter3d) for (17, 3), 2D (Scatter) for (17, 2)."""
    import plotly.graph_objects as go
    three_d = pose.shape[1] == 3
    kind = go.Scatter3d if three_d else go.Scatter
    extra = {"scene": scene} if (three_d and scene) else {}
    traces = []
    for side, bones in SKELETON_GROUPS.items():
        xyz = skeleton_segments(pose, bones)
        traces.append(kind(**dict(zip("xyz", xyz)), mode="lines", name=f"{name}·{side}", legendgroup=name,
                           showlegend=False, opacity=opacity, hoverinfo="skip",
                           line=dict(color=color or SIDE_COLORS[side], width=5 if three_d else 3, dash=dash),
                           **extra))
    traces.append(kind(**dict(zip("xyz", pose.T.tolist())), mode="markers", name=name, legendgroup=name,
                       opacity=opacity, text=list(JOINT_NAMES), hoverinfo="text+name",
                       marker=dict(color=color or SIDE_COLORS["torso"], size=3 if three_d else 5), **extra))
    return traces


def set_traces(fig, start: int, pose: np.ndarray) -> None:
    """Overwrite the coordinates of the four traces made by :func:`skeleton_traces` at ``start``."""
    for k, bones in enumerate(SKELETON_GROUPS.values()):
        for axis, coords in zip("xyz", skeleton_segments(pose, bones)):
            fig.data[start + k][axis] = coords
    for axis, coords in zip("xyz", pose.T.tolist()):
        fig.data[start + 3][axis] = coords


def scene_layout(radius: float, eye=None) -> dict:
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
    arrays = {name: as_pose_array(p, f"poses[{name!r}]").reshape(NUM_JOINTS, 3) for name, p in poses.items()}
    colors = dict(colors or {})
    fig = go.FigureWidget() if widget else go.Figure()
    for i, (name, pose) in enumerate(arrays.items()):
        default = None if i == 0 else POSE_PALETTE[(i - 1) % len(POSE_PALETTE)]
        fig.add_traces(skeleton_traces(pose, name, color=colors.get(name, default)))
    radius = 1.1 * max(np.abs(p).max() for p in arrays.values())
    fig.update_layout(scene=scene_layout(radius, eye), title=title, height=height,
                      margin=dict(l=0, r=0, t=40 if title else 10, b=0))
    return fig


def panel_2d_layout(limit: float, title: str) -> dict:
    return dict(title=title, xaxis=dict(range=[-limit, limit], zeroline=False, title="u"),
                yaxis=dict(range=[limit, -limit], scaleanchor="x", zeroline=False, title="v (down)"),
                margin=dict(l=40, r=10, t=40, b=40), showlegend=True)
