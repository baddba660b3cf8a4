"""What the Slurm path asks the cluster: the resources of each job (the GPUs default to what the partition has,
read with ``sinfo``), and the state of submitted jobs (``squeue``, then ``sacct`` where the cluster keeps
accounting), so that a job that ended without a result (cancelled, failed, its node lost) is noticed and
resubmitted even on a cluster without an accounting database."""
from __future__ import annotations

import re
import subprocess

# Slurm defaults per profile: (minutes per job, GB of memory, CPUs per job). The paper profile's time
# is the largest row's estimate (docs/cluster.md) with a safety factor; pre-empted jobs resume anyway.
SLURM_DEFAULTS = {"smoke": (30, 8, 2), "tutorial": (120, 16, 4), "paper": (24 * 60, 64, 8)}

# Job states of a job that is queued, running or about to run again (squeue's long names); UNKNOWN: squeue
# did not answer, so nothing can be concluded.
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
          "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD", "UNKNOWN"}
# Ended states after which a result may still be on its way (a shared filesystem's lag, a requeue after
# pre-emption): the job counts as running for GRACE_S more seconds before it is reported as lost.
SETTLING = {"COMPLETED", "PREEMPTED", None}
GRACE_S = 60.0


def _run(argv: list) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None


def partition_gres(partition: str | None = None):
    """(the partition's name, the generic resources of its nodes) from ``sinfo``: the named partition or the
    cluster's default one. None when sinfo cannot tell (not installed, no answer, no such partition)."""
    r = _run(["sinfo", "-h", "-o", "%P|%G"])
    if r is None or r.returncode:
        return None
    rows = [line.split("|", 1) for line in r.stdout.splitlines() if "|" in line]
    name = partition or next((p.rstrip("*") for p, _ in rows if p.endswith("*")), None)
    gres = [g.strip() for p, g in rows if p.rstrip("*") == name]
    return (name, gres) if name and gres else None


def has_gpus(gres: list) -> bool:
    """Whether some node's generic resources (``gpu:a100:4(S:0-1)``, ``(null)`` ...) include GPUs."""
    return any(re.search(r"(^|,)gpu(:|\(|,|$)", g) for g in gres)


def default_gpus(device: str, partition: str | None = None) -> tuple:
    """GPUs per job when ``--gpus`` is not given, and why: none with ``--device cpu``, one with an explicit
    ``--device cuda[:N]``, otherwise one when the partition's nodes have GPUs and none when they do not."""
    if device == "cpu":
        return 0, "--device cpu"
    if device.startswith("cuda"):
        return 1, f"--device {device}"
    found = partition_gres(partition)
    if found is None:
        where = f"partition {partition}" if partition else "the default partition"
        return 0, f"sinfo could not say whether {where} has GPUs; --gpus N asks for them"
    name, gres = found
    if has_gpus(gres):
        return 1, f"partition {name} has GPUs ({', '.join(sorted(set(gres)))})"
    return 0, f"partition {name} has no GPUs; --gpus N asks for them"


def request(profile: str, device: str, cluster: str = "slurm", partition=None, gpus=None, time_min=None,
            mem_gb=None, cpus=None, slurm_extra=None) -> tuple:
    """submitit's parameters of every job of a run, and a line that says what each job asks for."""
    d_time, d_mem, d_cpus = SLURM_DEFAULTS.get(profile, SLURM_DEFAULTS["paper"])
    if gpus is None:
        gpus, why = default_gpus(device, partition) if cluster == "slurm" else (0, "")
    else:
        why = f"--gpus {gpus}"
    params = {"name": "itespy", "timeout_min": int(time_min or d_time), "cpus_per_task": int(cpus or d_cpus),
              "mem_gb": float(mem_gb or d_mem), "tasks_per_node": 1, "nodes": 1}
    if gpus:
        params["gpus_per_node"] = int(gpus)
    if cluster == "slurm":
        if partition:
            params["slurm_partition"] = partition
        if slurm_extra:
            params["slurm_additional_parameters"] = dict(slurm_extra)
    text = (f"jobs of {params['timeout_min']} min, {int(gpus or 0)} GPU(s)" + (f" ({why})" if why else "")
            + f", {params['cpus_per_task']} CPU(s), {params['mem_gb']:g} GB"
            + (f", partition {partition}" if partition and cluster == "slurm" else "")
            + "".join(f", --{k.replace('_', '-')}={v}" for k, v in (slurm_extra or {}).items()
                      if cluster == "slurm"))
    return params, text


def job_states(job_ids) -> dict | None:
    """{job id: state} of ``job_ids``: from ``squeue`` for the jobs the controller still knows (queued,
    running, or ended less than MinJobAge ago), from ``sacct`` for the others where the cluster keeps
    accounting. A job neither knows is absent. None when squeue cannot be asked (nothing can be concluded)."""
    ids = sorted({str(j) for j in job_ids})
    if not ids:
        return {}
    r = _run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T"])
    if r is None:
        return None
    if r.returncode and "Invalid job id" not in r.stderr:  # all of them unknown: an error, but an answer
        return None
    states = {}
    for line in r.stdout.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id in ids:
            states[job_id] = state.strip().upper()
    unknown = [j for j in ids if j not in states]
    if unknown:
        r = _run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(unknown)])
        if r is not None and r.returncode == 0:  # "Slurm accounting storage is disabled": nothing more to know
            for line in r.stdout.splitlines():
                job_id, _, state = line.strip().partition("|")
                if job_id in unknown and state:
                    states[job_id] = state.split()[0].upper()  # "CANCELLED by 0"
    return states
