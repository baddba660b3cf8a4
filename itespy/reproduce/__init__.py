"""Reproduce every table of the paper with one command: ``python -m itespy reproduce --profile smoke``.

Layers, each usable alone, each module importing only the ones above it:

* :mod:`~itespy.reproduce.locks` -- a heartbeat file lock per cached job, and ``OUT/.lock`` per run.
* :mod:`~itespy.reproduce.jobs` -- one training stage of one configuration, cached in
  ``CACHE/<stage>-<key>/`` where ``key = hash(config + code version)`` (:func:`ensure_teacher`,
  :func:`ensure_student`). Rows that share a configuration (the default teacher of Tables 1, 3-8 and
  Figure 6) train it once; an interrupted training resumes from its epoch checkpoints; the job lock lets
  parallel workers share one cache.
* :mod:`~itespy.reproduce.rows` -- :func:`run_row` ``(table, row, profile, data, device, seed, cache_dir,
  rows_dir, ...) -> records`` trains (or loads) what one row needs, evaluates it and writes its records to
  ``OUT/rows/<table>/<row>/seed<k>.json`` (atomically). A row with a finished result for the same
  configuration and code is not recomputed. :func:`run_table` runs a table's rows.
* :mod:`~itespy.reproduce.tasks`, :mod:`~itespy.reproduce.backends`, :mod:`~itespy.reproduce.scheduler` --
  rows are independent, file-based units of work: ``--jobs N`` runs them in worker processes,
  ``--executor slurm`` as Slurm jobs, into one ``OUT``, in any order (docs/cluster.md).
* :mod:`~itespy.reproduce.report` -- one figure per table and ``REPORT.md``.
* :mod:`~itespy.reproduce.runner` -- :func:`reproduce` executes the table notebooks (notebooks/05-08) with
  papermill, keeping each executed copy in ``OUT/notebooks/``; then adds seeds to the rows of close claims,
  and writes ``OUT/results.json``, ``OUT/REPORT.md`` and ``OUT/figures/*.png``. A failing notebook is
  reported with its name and failing cell and the other notebooks still run. Two runs into one ``OUT`` are
  refused (``OUT/.lock``). :func:`publish` copies the shareable part into the repository.
* :mod:`~itespy.reproduce.published` -- a published run (results/tutorial) read back for the chapters.
* :mod:`~itespy.reproduce.cli` -- ``python -m itespy reproduce``.

``results.json`` is an object: ``{"format", "updated", "records": [...], "claims": [...], "notebooks": [...],
"runs": [...]}``; every record is one number: ``table, row, label, metric, protocol, unit, kit, paper,
delta, seed, profile, variant, data, test_data, model, status (ok | skipped | error), note, time (ISO
UTC), seconds, device, overrides, jobs, code_version``.
"""
from .cli import parse_set, parse_slurm_set, add_arguments, main, run_from_args
from ..config import RUN_FIELDS, STUDENT_FIELDS, teacher_config
from .jobs import (source_hash, code_version, ensure_student, ensure_teacher, job_key,
                   load_row_splits, student_job_name, teacher_job_name)
from .locks import LOCK_HEARTBEAT_S, LOCK_STALE_S, OutLock, ReproduceLockedError, job_lock, pid_alive, try_lock
from .paths import NOTEBOOKS_DIR, REPO, REPORT_FIGURES_DIR
from .published import PUBLISHED_TUTORIAL, chapter_results, published_results, read_results, run_records
from .report import report_markdown, write_figures
from .rows import (error_records, inference_ms, load_records, row_finished, row_jobs, row_key, row_trains, run_row,
                   run_table, run_tables, same_model_rows, select_records, shown_spec)
from .runner import (RESULTS_FORMAT, SEED_PASSES, read_run_results, write_run_results, execute_notebook, flat_baseline,
                     publish, reproduce)
from . import scheduler  # noqa: E402 -- after the layers it runs
