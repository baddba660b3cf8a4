"""Long teacher (and student) runs with the diagnostics of issue "ITES keeps learning".

Trains a teacher for ``--steps`` SGD steps (then, optionally, a student from the teacher kept by the
validation rule) on a DATA spec and records, every ``--eval-every`` steps, on the validation split (held-out
*training* clips) and on the test split:

* MPJPE / P-MPJPE with the depth mirror (the paper's protocol) and without it (``*_nomirror``),
* ``mirror``: the share of poses whose depth mirror scores better (MPJPE after scale calibration),
* ``wrong_handed``: the share of predictions that are mirror-image bodies (:func:`itespy.skeleton.body_handedness`
  below 0; the ground truth has none),
* ``depth_ratio``: std of the root-relative depth over std of the root-relative x, y of the prediction
  (scale-free; the ground truth's ratio is printed as ``gt_depth_ratio``); the flat pose has 0,
* teacher only: the canonical pose's spread across inputs and its scale (mean root distance, model units),
  the mean camera-rotation angle (degrees), and each loss term averaged since the previous check.

    python bench/teacher_long.py --data mocap:../shared/data/bandai/bandai_h36m17.npz --steps 10000 \
        --out bench/results/long_teacher_baseline.json --set lr_decay_every=0

Writes the records as JSON (atomically, after every check, so a cut run keeps what it measured).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from itespy.config import make_config
from itespy.data import load_splits
from itespy.data.validation import validation_split
from itespy.evaluate import evaluate_flat_baseline, flat_pose, predicted_poses
from itespy.geometry import root_centre, rotation_angle
from itespy.inference import predict, teacher_depth_labels
from itespy.io import atomic_write_json
from itespy.metrics import depth_flip, mpjpe_scaled, p_mpjpe
from itespy.models import build_student, build_teacher
from itespy.skeleton import body_handedness
from itespy.train import epoch_generator, make_optimizer, student_loss, teacher_loss
from records import precise_bn  # bench/records.py (scripts run as python bench/NAME.py)


def _overrides(items) -> dict:
    """KEY=VALUE strings -> config overrides (JSON values; bare words stay strings)."""
    out = {}
    for item in items:
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def depth_ratio(poses) -> float:
    """std of root-relative z over std of root-relative x, y (scale-free depth commitment)."""
    c = root_centre(np.asarray(poses, np.float64))[:, 1:]
    return float(c[..., 2].std() / max(c[..., :2].std(), 1e-12))


def pose_scores(pred, gt) -> dict:
    """With and without the depth mirror, and how often the mirror wins (per-sample, MPJPE)."""
    m, mf = mpjpe_scaled(pred, gt), mpjpe_scaled(depth_flip(pred), gt)
    p, pf = p_mpjpe(pred, gt), p_mpjpe(depth_flip(pred), gt)
    return {"mpjpe": float(np.minimum(m, mf).mean()), "p_mpjpe": float(np.minimum(p, pf).mean()),
            "mpjpe_nomirror": float(m.mean()), "p_mpjpe_nomirror": float(p.mean()),
            "mirror": float((mf < m).mean()), "depth_ratio": depth_ratio(pred),
            "wrong_handed": float((body_handedness(pred) < 0).mean())}


@torch.no_grad()
def teacher_state(teacher, keypoints_2d) -> dict:
    out = predict(teacher, keypoints_2d, "cpu", 1024)
    canonical = root_centre(out["canonical"].astype(np.float64))
    angle = rotation_angle(out["rotation"])
    state = {"canonical_spread": float(canonical.std(axis=0).mean()),
             "canonical_scale": float(np.linalg.norm(canonical, axis=-1)[:, 1:].mean()),
             "rotation_angle_deg": float(angle.mean()),  # of R̂ itself: in [0, 180]
             "camera_output_norm": float(np.linalg.norm(out["camera"], axis=-1).mean())}
    if teacher.camera == "axis_angle":  # the head's axis-angle length: past 180 the same R̂ is reached again
        state["camera_angle_deg"] = float(np.degrees(state["camera_output_norm"]))
    return state


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="synthetic")
    p.add_argument("--variant", default="paper")
    p.add_argument("--profile", default="tutorial")
    p.add_argument("--max-train", type=int, default=0, help="0: every training pose")
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--student-steps", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", nargs="*", default=[], help="config overrides KEY=VALUE (JSON values)")
    p.add_argument("--student-set", nargs="*", default=[], help="overrides for the student stage only")
    p.add_argument("--data-option", nargs="*", default=[], help="loader options KEY=VALUE, e.g. views=4")
    p.add_argument("--load-teacher", help="skip stage 1: a state_dict saved by --save-teacher")
    p.add_argument("--save-teacher", help="save the kept teacher's state_dict here")
    p.add_argument("--projection", default="perspective", choices=("perspective", "orthographic"),
                   help="diagnostic: the projection inside the training losses (the paper: perspective)")
    p.add_argument("--cycle-bn", default="batch", choices=("batch", "running"),
                   help="diagnostic: batch norm inside L_RIC's second pass: 'batch' (its own batch statistics, "
                        "train mode, as now) or 'running' (the running statistics of the real batches, as at eval)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.cycle_bn == "running":  # diagnostic: the cycle's pass normalises as the evaluated teacher does
        import itespy.losses
        plain_ric = itespy.losses.rotation_invariance_loss

        def ric_with_running_bn(teacher, *args, **kwargs):
            def eval_bn_teacher(x):
                norms = [m for m in teacher.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
                for m in norms:
                    m.eval()
                try:
                    return teacher(x)
                finally:
                    for m in norms:
                        m.train()
            return plain_ric(eval_bn_teacher, *args, **kwargs)
        import itespy.train
        itespy.train.rotation_invariance_loss = ric_with_running_bn
    if a.projection == "orthographic":  # diagnostic only: depth can no longer change a projection
        import itespy.losses
        from itespy.geometry import orthographic_project
        itespy.losses.perspective_project = orthographic_project
    cfg = make_config(a.profile, a.variant, data=a.data, seed=a.seed, **_overrides(a.set))
    cfg = cfg.replace(max_train=a.max_train or None)
    splits = load_splits(cfg.data, seed=cfg.seed, max_train=cfg.max_train, max_test=cfg.max_test,
                         **_overrides(a.data_option))
    train, test = splits["train"], splits["test"]
    train, val = validation_split(train)
    sets = {"val": val, "test": test}
    head = {"args": vars(a), "config": {k: v for k, v in cfg.to_dict().items() if k != "extra"},
            "train": len(train), "val": len(val), "test": len(test),
            "flat": {k: pose_scores(flat_pose(s.keypoints_2d), s.poses_3d) for k, s in sets.items()},
            "gt_depth_ratio": {k: depth_ratio(s.poses_3d) for k, s in sets.items()}}
    print(json.dumps(head), flush=True)
    records = []
    x_all = torch.as_tensor(train.keypoints_2d)
    t0 = time.perf_counter()

    def save():
        atomic_write_json(a.out, {**head, "records": records})

    def report(stage, net, step, sums, count):
        net.eval()
        rec = {"stage": stage, "step": step, "seconds": round(time.perf_counter() - t0, 1),
               **{f"loss_{k}": v / max(count, 1) for k, v in sums.items()}}
        for name, s in sets.items():
            rec[name] = pose_scores(predicted_poses(net, s.keypoints_2d), s.poses_3d)
        rec["val_bnreal"] = pose_scores(predicted_poses(precise_bn(net, x_all, batches=40), val.keypoints_2d),
                                        val.poses_3d)
        if stage == "teacher":
            rec.update(teacher_state(net, val.keypoints_2d))
        net.train()
        records.append(rec)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else
                              {kk: round(vv, 3) for kk, vv in v.items()} if isinstance(v, dict) else v)
                          for k, v in rec.items()}), flush=True)
        save()

    def train_steps(stage, net, n_steps, run_cfg, labels=None):
        opt, sched = make_optimizer(run_cfg, net, stage)
        step, epoch, sums, count, best = 0, 0, {}, 0, None
        steps_per_epoch = len(x_all) // run_cfg.batch_size
        while step < n_steps:
            gen = epoch_generator(run_cfg.seed, stage, epoch)
            for idx in torch.randperm(len(x_all), generator=gen).split(run_cfg.batch_size):
                if len(idx) < run_cfg.batch_size or step >= n_steps:
                    break
                net.train()
                losses = (teacher_loss(run_cfg, net, x_all[idx], gen, epoch) if stage == "teacher" else
                          student_loss(run_cfg, net, x_all[idx], labels[idx], gen))
                opt.zero_grad()
                losses["total"].backward()
                opt.step()
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
                count += 1
                step += 1
                if step % a.eval_every == 0:
                    report(stage, net, step, sums, count)
                    sums, count = {}, 0
                    if best is None or records[-1]["val"]["mpjpe"] < best[0]:
                        best = (records[-1]["val"]["mpjpe"], step,
                                {k: v.detach().clone() for k, v in net.state_dict().items()})
            sched.step()
            epoch += 1
        print(json.dumps({"stage": stage, "steps_per_epoch": steps_per_epoch, "epochs": epoch,
                          "best_val_step": best[1] if best else None}), flush=True)
        return best

    torch.manual_seed(cfg.seed)
    teacher = build_teacher(cfg)
    if a.load_teacher:
        teacher.load_state_dict(torch.load(a.load_teacher))
    else:
        best = train_steps("teacher", teacher, a.steps, cfg)
        if best is not None:
            teacher.load_state_dict(best[2])
            head["teacher_kept_step"] = best[1]
        if a.save_teacher:
            torch.save(teacher.state_dict(), a.save_teacher)
    if a.student_steps:
        teacher.eval()
        head["teacher_kept"] = {k: pose_scores(predicted_poses(teacher, s.keypoints_2d), s.poses_3d)
                                for k, s in sets.items()}
        cfg_s = cfg.replace(**_overrides(a.student_set))
        labels = torch.as_tensor(teacher_depth_labels(teacher, train.keypoints_2d, "cpu", target=cfg_s.kd_target))
        torch.manual_seed(cfg.seed + 2)
        t0 = time.perf_counter()
        train_steps("student", build_student(cfg_s), a.student_steps, cfg_s, labels)
    save()


if __name__ == "__main__":
    main()
