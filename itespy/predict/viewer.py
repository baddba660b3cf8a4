"""Rendering a :class:`~itespy.predict.Prediction`: the self-contained HTML viewer and PNG frames."""
from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .inputs import jsonable

if TYPE_CHECKING:
    from .core import Prediction

# ---------------------------------------------------------------------------------------------- rendering
VIEW_EYES = {"camera view": dict(x=0.0, y=0.0, z=-2.2), "three-quarter": dict(x=0.9, y=-0.5, z=-1.6),
             "side": dict(x=2.2, y=0.0, z=0.0), "top": dict(x=0.0, y=-2.2, z=0.01)}


def viewer_html(pred: Prediction, title: str | None = None) -> str:
    """A self-contained HTML page (plotly.js inlined, works offline): the 2D input and the teacher /
    student 3D poses, a frame slider with play/pause, drag to rotate, and buttons for preset views."""
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.subplots import make_subplots

    from ..viz import IMAGE_VIEW_CAMERA
    from ..viz.traces import scene_layout, skeleton_traces
    poses = {name: getattr(pred, name) for name in ("teacher", "student") if getattr(pred, name) is not None}
    names = ["2D input (pixels)"] + [f"{k} 3D (model units)" for k in poses]
    scenes = ["scene" if k == 0 else f"scene{k + 1}" for k in range(len(poses))]
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.03,
                        specs=[[{"type": "xy"}] + [{"type": "scene"}] * len(poses)])
    # frame 0 is built with the styled traces of itespy.viz; the other frames reuse them as templates
    # (plain dicts, only the coordinates change), which is much faster than validating 13 traces x N frames
    first = skeleton_traces(pred.pixels[0], "input")
    first.append(go.Scatter(x=[], y=[], mode="markers", name="filled", hoverinfo="name",
                            marker=dict(symbol="x", size=9, color="#ff7f0e")))
    for k, name in enumerate(poses):
        first += skeleton_traces(poses[name][0], name, scene=scenes[k])
    for k, trace in enumerate(first):
        fig.add_trace(trace, row=1, col=1 if k < 5 else 2 + (k - 5) // 4)
    radius = 1.1 * max([float(np.abs(v).max()) for v in poses.values()] + [1e-6])
    for scene in scenes:
        fig.layout[scene].update(scene_layout(radius))
    if pred.image_size is not None:
        w, h = pred.image_size
        fig.update_xaxes(range=[0, w], row=1, col=1)
        fig.update_yaxes(range=[h, 0], row=1, col=1, scaleanchor="x")
    else:
        lo, hi = pred.pixels.min((0, 1)), pred.pixels.max((0, 1))
        pad = 0.1 * float((hi - lo).max())
        fig.update_xaxes(range=[lo[0] - pad, hi[0] + pad], row=1, col=1)
        fig.update_yaxes(range=[hi[1] + pad, lo[1] - pad], row=1, col=1, scaleanchor="x")
    animate = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    steps = [dict(method="animate", label=str(jsonable(fid)), args=[[str(i)], animate])
             for i, fid in enumerate(pred.frame_id)]
    views = [dict(label=label, method="relayout",
                  args=[{f"{s}.camera": dict(IMAGE_VIEW_CAMERA, eye=eye) for s in scenes}])
             for label, eye in VIEW_EYES.items()]
    play = dict(mode="immediate", frame=dict(duration=80, redraw=True), transition=dict(duration=0),
                fromcurrent=True)
    fig.update_layout(
        title=title or f"ITES predictions for {Path(str(pred.report['input'])).name}",
        height=520, width=max(900, 420 * len(names)), margin=dict(l=30, r=10, t=90, b=10), showlegend=False,
        sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="frame "), pad=dict(t=40), len=0.9,
                      x=0.05)],
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.02, xanchor="left", yanchor="top",
                          buttons=[dict(label="play", method="animate", args=[None, play]),
                                   dict(label="pause", method="animate", args=[[None], animate])]),
                     dict(type="buttons", direction="left", x=1.0, y=1.12, xanchor="right", yanchor="top",
                          buttons=views)],
        annotations=list(fig.layout.annotations) + [dict(
            text="Drag a 3D panel to rotate it. Model units, root-relative: shape only up to scale. "
                 "Orange x: joints filled from an earlier frame.",
            showarrow=False, xref="paper", yref="paper", x=0.0, y=1.13, xanchor="left", font=dict(size=11))])
    spec = fig.to_plotly_json()
    templates = spec["data"]
    spec["frames"] = [{"name": str(i), "traces": list(range(len(templates))),
                       "data": _frame_traces(templates, pred, poses, i)} for i in range(len(pred.pixels))]
    return pio.to_html(spec, include_plotlyjs=True, full_html=True, auto_play=False, validate=False,
                       div_id="itespy-viewer")


def _frame_traces(templates, pred, poses, i) -> list:
    """Copies of the trace dicts of frame 0 with the coordinates of frame ``i`` (same order)."""
    from ..viz.traces import SKELETON_GROUPS, skeleton_segments
    out = []

    def skeleton(pose, start):
        for k, bones in enumerate(SKELETON_GROUPS.values()):
            out.append({**templates[start + k], **dict(zip("xyz", skeleton_segments(pose, bones)))})
        out.append({**templates[start + 3], **dict(zip("xyz", pose.T.tolist()))})

    skeleton(pred.pixels[i], 0)
    gaps = pred.filled[i]
    out.append({**templates[4], "x": pred.pixels[i, gaps, 0].tolist(), "y": pred.pixels[i, gaps, 1].tolist()})
    for k, seq in enumerate(poses.values()):
        skeleton(seq[i].astype(np.float64), 5 + 4 * k)
    return out


def png_frames(pred: Prediction, step: int = 1):
    """[(frame index, PNG bytes)] for every ``step``-th kept frame: 2D input + teacher + student (matplotlib)."""
    import matplotlib
    import matplotlib.pyplot as plt

    from ..viz import plot_skeleton_2d, plot_skeleton_3d
    if step < 1:
        raise ValueError(f"png step: expected a positive integer, got {step}")
    poses = {name: getattr(pred, name) for name in ("teacher", "student") if getattr(pred, name) is not None}
    out = []
    with matplotlib.rc_context({"figure.max_open_warning": 0}):
        for i in range(0, len(pred.pixels), step):
            fig = plt.figure(figsize=(3.2 * (1 + len(poses)), 3.4))
            try:
                ax = fig.add_subplot(1, 1 + len(poses), 1)
                plot_skeleton_2d(ax, pred.pixels[i])
                gaps = pred.filled[i]
                if gaps.any():
                    ax.plot(pred.pixels[i, gaps, 0], pred.pixels[i, gaps, 1], "x", color="#ff7f0e", markersize=8)
                if pred.image_size is not None:
                    ax.set_aspect("equal", adjustable="box")
                    ax.set_xlim(0, pred.image_size[0])
                    ax.set_ylim(pred.image_size[1], 0)
                ax.set_title(f"frame {jsonable(pred.frame_id[i])}: 2D input (pixels)", fontsize=9)
                for k, (name, seq) in enumerate(poses.items()):
                    ax = fig.add_subplot(1, 1 + len(poses), k + 2, projection="3d")
                    plot_skeleton_3d(ax, seq[i])
                    ax.view_init(elev=12, azim=-55)
                    ax.set_xticklabels([]), ax.set_yticklabels([]), ax.set_zticklabels([])
                    ax.set_xlabel(""), ax.set_ylabel(""), ax.set_zlabel("")
                    ax.set_title(f"{name} 3D (model units, up to scale)", fontsize=9)
                fig.tight_layout()
                buffer = io.BytesIO()
                fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
                out.append((int(pred.frame_index[i]), buffer.getvalue()))
            finally:
                plt.close(fig)
    return out
