"""JupyterLab widgets: :class:`PlotlyView` (an anywidget showing a plotly figure), :class:`RotationWidget` and
:class:`CompareWidget`, and their matplotlib twins.

Interactive helpers (:func:`rotation_widget`, :func:`compare_widget`) return ipywidgets boxes that show
plotly figures through :class:`PlotlyView` (needs ``anywidget``); each has a matplotlib twin (``*_static``,
or ``static=True``) so headless runs and ``figures/`` still show something.
"""
from __future__ import annotations

import json

import anywidget
import ipywidgets as widgets
import numpy as np
import traitlets

from .. import geometry
from ..skeleton import NUM_JOINTS
from .figures import new_figure, plot_skeleton_2d, plot_skeleton_3d, save_figure
from .poses import FLIP_CHOICES, as_pose_array, euler_rotation, flip_joint_depth, project_pose, rotate_pose
from .traces import panel_2d_layout, scene_layout, set_traces, skeleton_traces


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
    poses = as_pose_array(poses, name)
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
        self.fig3d = go.Figure(layout=dict(scene=scene_layout(radius), height=height, width=height,
                                           margin=dict(l=0, r=0, t=30, b=0), title="3D (camera frame)"))
        self.fig2d = go.Figure(layout=dict(height=height, width=height, **panel_2d_layout(
            1.15 * radius / max(t - radius, 1.0), "2D: P(Y) = (x, y) / max(1, t + z)")))
        for fig, dims in ((self.fig3d, 3), (self.fig2d, 2)):
            fig.add_traces(skeleton_traces(base[:, :dims], "unflipped", color="#bbbbbb", dash="dot"))
            fig.add_traces(skeleton_traces(base[:, :dims], "pose"))
        self.fig2d.add_traces(skeleton_traces(base[:, :2], "orthographic", color="#2ca02c", dash="dash"))
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
            set_traces(self.fig3d, 0, self.pose_unflipped)
            set_traces(self.fig3d, 4, self.pose_3d)
            set_traces(self.fig2d, 0, project_pose(self.pose_unflipped, st["t"]))
            set_traces(self.fig2d, 4, self.pose_2d)
            set_traces(self.fig2d, 8, project_pose(self.pose_3d, st["t"], "orthographic"))
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
    fig = new_figure(figsize=(8.5, 4.2))
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
        self.kp2d = None if kp2d is None else as_pose_array(kp2d, "kp2d", dims=(2,)).reshape(-1, NUM_JOINTS, 2)
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
            self.fig3d.add_traces(skeleton_traces(self.sequences[name][0], name, scene=scene))
            self.fig3d.layout[scene].update(scene_layout(radius))
        self.fig3d.update_layout(height=height, width=330 * len(names), showlegend=False,
                                 margin=dict(l=0, r=0, t=40, b=0))
        self.fig2d = self.view2d = None
        self.view3d = PlotlyView()
        children = [self.view3d]
        if self.kp2d is not None:
            layout = panel_2d_layout(1.1 * np.abs(self.kp2d).max(), "2D input") | dict(showlegend=False)
            self.fig2d = go.Figure(layout=dict(height=height, width=height, **layout))
            self.fig2d.add_traces(skeleton_traces(self.kp2d[0], "input"))
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
                set_traces(self.fig3d, 4 * i, pose)
                self.fig3d.layout.annotations[i].text = _panel_title(name, pose, gt, self.unit)
            if self.fig2d is not None:
                set_traces(self.fig2d, 0, self.kp2d[st["sample"]])
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
    fig = new_figure(figsize=(3.3 * ncols, 3.6))
    for i, (name, pose) in enumerate(posed.items()):
        ax = fig.add_subplot(1, ncols, i + 1, projection="3d")
        plot_skeleton_3d(ax, pose)
        ax.view_init(elev=elev, azim=azim)
        ax.set_title(_panel_title(name, pose, posed.get("ground truth"), unit), fontsize=9)
    if kp2d is not None:
        ax = fig.add_subplot(1, ncols, ncols)
        plot_skeleton_2d(ax, as_pose_array(kp2d, "kp2d", dims=(2,)).reshape(-1, NUM_JOINTS, 2)[index])
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
