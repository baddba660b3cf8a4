"""Lift your own 2D keypoints to 3D with a trained ITES run (``python -m itespy predict``).

    python -m itespy predict --checkpoint runs/smoke --input my_video.json --format coco17 \\
        --out my_video_3d.npz --html my_video_3d.html

Pipeline (each step documented in docs/your_keypoints.md):

1. **Read** (:func:`read_keypoints`): ``.npz`` with ``keypoints`` (N, 17, 2) or (N, 17, 3) (third column:
   confidence); ``.json`` as a COCO results list (per ``image_id`` the person with the highest ``score``
   is kept), a COCO annotation file (``{"annotations": [...]}``), ``{"keypoints": nested list}`` or a plain
   nested list. Anything else raises :class:`InputError` naming the file.
2. **Convert** COCO-17 to H36M-17 (:func:`itespy.coco.coco_to_h36m`, confidences = minimum of the sources).
3. **Missing joints** (:func:`fill_missing`): a joint is missing when its confidence is below
   ``min_confidence`` (default 0.3). It is filled from the previous frame: its offset from the pelvis in
   the last frame where it was seen is added to the current pelvis (a missing pelvis is copied as is).
   A frame is **skipped** (and reported, with the reason) when more than ``max_missing`` joints (default
   8) are missing, or when a missing joint was not seen in the previous ``max_gap`` frames (default 10).
4. **Normalise** (:func:`normalise_pixels`) pixels into the model's 2D space. ``sequence``: root-centre and
   scale the whole sequence so its mean pelvis-to-head 2D length is 1/5, as the training data is (the
   focal length then cancels out). ``checkpoint``: ``(px - root px) / focal * scale`` with the training
   run's ``scale`` (normalisation.json) and your camera's ``--focal``. ``auto`` (default): ``checkpoint``
   when ``--focal`` is given and the run recorded its scale, else ``sequence``.
5. **Predict** with the run's teacher (scored as configured: by default the input 2D lifted with its depth)
   and student (Ŷs), root-centred.

Outputs are in **model units** (the pelvis at depth 5; pelvis-to-head about 1). Unsupervised lifting
recovers the 3D shape only **up to scale**: nothing in a 2D image says how big the person is. Multiply
by (a known length in mm) / (the same length in the prediction) to get millimetres.

All files are rendered in memory first and then written atomically, so an error leaves no partial
output behind.

Modules (each depends only on those above it):

- :mod:`~itespy.predict.inputs` -- reading ``.npz`` / ``.json`` keypoints, :class:`InputError`,
  :func:`check_values`, :func:`to_h36m`, :func:`fill_missing`, :func:`normalise_pixels` (steps 1-4);
- :mod:`~itespy.predict.viewer` -- :func:`viewer_html` (self-contained HTML viewer) and :func:`png_frames`;
- :mod:`~itespy.predict.core` -- :func:`load_run`, :class:`Prediction`, :func:`predict_keypoints`,
  :func:`predict_file`, :func:`summary_lines` (step 5);
- :mod:`~itespy.predict.cli` -- :func:`run` (predict and write files), :func:`add_arguments`,
  :func:`run_from_args`.

Every name is re-exported here, so ``from itespy import predict; predict.fill_missing(...)`` works.
"""
from .inputs import (DEFAULT_MAX_GAP, DEFAULT_MAX_MISSING, DEFAULT_MIN_CONFIDENCE, FORMATS, NORMALISE_MODES,
                     FillResult, InputError, InputNotFoundError, RawKeypoints, check_values, fill_missing,
                     normalise_pixels, read_keypoints, to_h36m)
from .viewer import VIEW_EYES, png_frames, viewer_html
from .core import SCALE_NOTE, Prediction, load_run, predict_file, predict_keypoints, summary_lines
from .cli import add_arguments, run, run_from_args

__all__ = ["DEFAULT_MAX_GAP", "DEFAULT_MAX_MISSING", "DEFAULT_MIN_CONFIDENCE", "FORMATS", "NORMALISE_MODES",
           "SCALE_NOTE", "VIEW_EYES", "FillResult", "InputError", "InputNotFoundError", "Prediction",
           "RawKeypoints", "add_arguments", "check_values", "fill_missing", "load_run", "normalise_pixels",
           "png_frames", "predict_file", "predict_keypoints", "read_keypoints", "run", "run_from_args",
           "summary_lines", "to_h36m", "viewer_html"]
