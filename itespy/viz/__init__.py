"""Drawing skeletons: matplotlib figures for papers and ``figures/``, plotly widgets for notebooks.

Modules, each importing only those listed before it:

- :mod:`itespy.viz.poses`: the example pose, rotations, projections, depth flips, colours, and pose
  diagnostics (ground-truth scale, body orientation); conventions are in its docstring.
- :mod:`itespy.viz.figures`: matplotlib skeletons, galleries, :func:`save_figure`, training diagnostics.
- :mod:`itespy.viz.traces`: plotly skeleton traces and layouts, :func:`skeleton_figure`.
- :mod:`itespy.viz.widgets`: :class:`PlotlyView`, the rotation and compare widgets and their static twins.

Every public name is re-exported here, so ``from itespy import viz; viz.rotation_widget(...)`` works.
"""
from .figures import (JOINT_SHORT_NAMES, LOSS_LABELS, joint_matrix_grid, plot_error_bars, plot_joint_matrix, plot_long_run,
                      plot_loss_curves, plot_student_gain, plot_skeleton_2d, plot_skeleton_3d, save_figure,
                      skeleton_grid)
from .poses import (EXAMPLE_POSE_MM, FLIP_CHOICES, POSE_PALETTE, SIDE_COLORS, body_forward, body_heading,
                    descendants, direction_concentration, euler_rotation, example_pose, flip_joint_depth,
                    project_pose, rotate_pose, to_ground_truth_scale)
from .traces import IMAGE_VIEW_CAMERA, skeleton_figure
from .widgets import (CompareWidget, PlotlyView, RotationWidget, compare_static, compare_widget, posed_view,
                      rotation_static, rotation_widget)

__all__ = [
    # poses
    "SIDE_COLORS", "POSE_PALETTE", "EXAMPLE_POSE_MM", "FLIP_CHOICES", "example_pose", "euler_rotation",
    "rotate_pose", "project_pose", "descendants", "flip_joint_depth", "to_ground_truth_scale", "body_forward",
    "body_heading", "direction_concentration",
    # figures
    "plot_skeleton_3d", "plot_skeleton_2d", "skeleton_grid", "save_figure", "LOSS_LABELS", "JOINT_SHORT_NAMES",
    "plot_loss_curves", "plot_error_bars", "plot_joint_matrix", "joint_matrix_grid", "plot_long_run",
    "plot_student_gain",
    # traces
    "IMAGE_VIEW_CAMERA", "skeleton_figure",
    # widgets
    "PlotlyView", "posed_view", "RotationWidget", "rotation_static", "rotation_widget", "CompareWidget",
    "compare_static", "compare_widget",
]
