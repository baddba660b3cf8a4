"""Students trained from one fixed, already trained teacher, one recipe per line (issue "ITES keeps learning",
item 2: what makes the student better than its teacher). Scores teacher and students on the profile's test
split and, for mocap data, on the same test clips without bone-length augmentation (the bodies as captured).

    python bench/student_check.py runs/tutorial2/cache/teacher-5410a91e9110c490 /tmp/students \\
        '{}' '{"student_epochs": 6, "student_lr_decay_every": 2}' \\
        --append bench/results/long/student_checks.jsonl

Each recipe is a JSON object of config overrides on the teacher run's own configuration (its data, seed and
profile); every student is its own run directory under OUT. A recipe with another ``max_train`` (e.g. null: every
training pose) trains the student on that subsample of the training clips, the fixed teacher labelling it.

``--oracle`` replaces L_KD's target by the true depth of every training pose (root-relative, mm) times one
constant fitted by least squares to the teacher's own targets (so the target has the teacher's units): the
student of a teacher that is right about every depth, the ceiling of the student's recipe at its budget."""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

from itespy.checkpoints import load_model
from records import emit, teacher_run  # bench/records.py (scripts run as python bench/NAME.py)

from itespy.config import STUDENT_FIELDS
from itespy.data import load_splits
from itespy.data.load import load_test_set
from itespy.data.spec import parse_spec
from itespy.evaluate import evaluate_model
from itespy.run import run_experiment
from itespy.runfolder import RunFolder

PROTOCOLS = ("mpjpe_scaled_flip", "p_mpjpe_flip", "mpjpe_scaled")


def _scores(model, test_set, teacher_output="lifted") -> dict:
    m = evaluate_model(model, test_set, teacher_output=teacher_output)
    return {**{k: round(m[k]["mean"], 1) for k in PROTOCOLS}, "mirror_rate": round(m.get("mirror_rate", -1), 3)}


def oracle_targets(train_set):
    """Patch the trainer's L_KD targets: the true depths of ``train_set`` scaled to the teacher's units."""
    import numpy as np

    from itespy import train as train_module
    original = train_module.teacher_depth_labels
    truth = train_set.poses_3d[..., 2] - train_set.poses_3d[:, :1, 2]

    def patched(teacher, keypoints_2d, *args, **kwargs):
        if not np.array_equal(np.asarray(keypoints_2d), train_set.keypoints_2d):
            raise ValueError("oracle: the student trains on other poses than the split given")
        taught = original(teacher, keypoints_2d, *args, **kwargs)
        scale = float((taught * truth).sum() / (truth * truth).sum())
        print(json.dumps({"oracle_scale": scale}), flush=True)
        return (scale * truth).astype(np.float32)
    train_module.teacher_depth_labels = patched


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("teacher_dir", help="a run directory holding teacher.pt and config.json")
    p.add_argument("out", help="folder for the student runs (one sub-folder per recipe)")
    p.add_argument("recipes", nargs="+", help="config overrides, one JSON object per student")
    p.add_argument("--append", help="JSON-lines file to append each result to")
    p.add_argument("--oracle", action="store_true", help="L_KD on the true depths (see above)")
    a = p.parse_args(argv)
    teacher_dir = Path(a.teacher_dir)
    base, splits = teacher_run(teacher_dir)
    tests = {"test": splits["test"]}
    if parse_spec(base.data)[0] == "mocap":  # the same clips as captured, normalised as the training split
        tests["test_unaugmented"] = load_test_set(base.data, splits["train"].meta["scale"], seed=base.seed,
                                                  max_test=base.max_test, stride=base.stride,
                                                  augment_bones=False)
    if a.oracle:
        from itespy.data.validation import validation_split
        oracle_targets(validation_split(splits["train"])[0])
    teacher, _ = load_model(teacher_dir / "teacher.pt", "teacher")
    teacher_scores = {name: _scores(teacher, t, base.teacher_output) for name, t in tests.items()}
    print(json.dumps({"teacher": str(teacher_dir), **teacher_scores}), flush=True)
    for text in a.recipes:
        overrides = json.loads(text)
        cfg = base.replace(**overrides).validate()
        student_splits = splits
        if cfg.max_train != base.max_train:  # the student distils on another subsample of the training clips
            student_splits = load_splits(cfg.data, seed=cfg.seed, max_train=cfg.max_train, max_test=cfg.max_test,
                                         stride=cfg.stride)
        out = Path(a.out) / hashlib.sha1(f"{teacher_dir.resolve()}|{json.dumps(overrides, sort_keys=True)}"
                                         f"{'|oracle' if a.oracle else ''}"
                                         .encode()).hexdigest()[:12]
        t0 = time.time()
        run_experiment(cfg, out, stage="student", splits=student_splits, resume=True, progress=False,
                       teacher_dir=teacher_dir)
        folder = RunFolder(out)
        student, _ = folder.load_model("student")
        kept = folder.history("student")[-1].get("kept", {})
        result = {"teacher_dir": str(teacher_dir), "seed": base.seed, "overrides": overrides,
                  **({"kd_target": "oracle: true depth x one constant"} if a.oracle else {}),
                  "student_recipe": {k: getattr(cfg, k) for k in STUDENT_FIELDS},
                  "seconds": round(time.time() - t0), "kept_step": kept.get("best_step"),
                  "teacher": teacher_scores,
                  "student": {name: _scores(student, t) for name, t in tests.items()}}
        emit(result, a.append)


if __name__ == "__main__":
    main()
