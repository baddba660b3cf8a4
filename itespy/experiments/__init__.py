"""The paper's experiments as data: Tables 1-9 and Figure 6 of ITES (AAAI 2021), their rows, the paper's
numbers, the claims they support, and small formatters / plots shared by the notebooks and the runner.

Nothing here trains anything (that is :mod:`itespy.reproduce`). Modules: :mod:`~itespy.experiments.tables`
(columns, rows, tables, each row's configuration), :mod:`~itespy.experiments.claims` (aggregation over seeds,
the claims' checks), :mod:`~itespy.experiments.display` (text tables and figures), :mod:`~itespy.experiments.discussion` (each
claim's paper / kit / per-seed discussion). A row says *what* to run:

* ``overrides`` -- the :class:`itespy.config.Config` fields that differ from the paper's default model
  (the profile and the user's flags are applied around them by :func:`row_config`);
* ``model`` -- whose output the row reports: ``"teacher"`` (ITES-T, after stage 1) or ``"student"``
  (ITES-TS, after stage 2); for the cost rows of Table 9 the network that is measured;
* ``paper`` -- the paper's number for each column (mm for MPJPE / P-MPJPE, % for PCK / AUC, millions of
  parameters and milliseconds for Table 9; ``None`` where the paper gives no number);
* ``input`` -- ``"gt"`` (2D ground truth) or ``"img"`` (CPN detections, needs ``h36m-cpn`` data);
  ``test`` -- ``"own"`` (the test split of the training data) or ``"3dhp"`` (MPI-INF-3DHP, Table 2).

The columns map to the kit's metric protocols through :data:`METRICS` (MPJPE -> ``mpjpe_scaled_flip``,
P-MPJPE -> ``p_mpjpe_flip``, as the authors' code computes them; see :mod:`itespy.metrics`).

    >>> from itespy import experiments as ex
    >>> ex.TABLES["T3"].row("rep_only").paper
    {'MPJPE': 153.5, 'P-MPJPE': 120.4}
    >>> print(ex.paper_table_text("T8"))          # the paper's numbers beside each row's configuration
"""
from .tables import (AGCN_TEACHER_TRUNK, FIGURE6_ATOMS, METRICS, MM, NOTEBOOKS, PAPER_FLAT_H36M, UNFLIPPED_PROTOCOLS, PROFILE_SEEDS, QUICK_OVERRIDES, TABLE_IDS, TABLES,
                     TABLE_LIST, Metric, Reference, Row, Table, config_summary, get_table, parse_only, row_config,
                     row_data)
from .claims import (CLAIMS, CLAIMS_BY_ID, CLOSE_FRACTION, Claim, add_seed_verdicts, aggregate, claims_for,
                     evaluate_claim, evaluate_claims, paper_values, seed_values)
from .display import (cell_text, claim_result_text, claims_text, format_grid, paper_table_text, plot_table,
                      protocol_line, references_text, results_table_rows, results_table_text)
from .discussion import claim_discussion, discussion_text
from . import claims, discussion, display, tables  # noqa: E402 -- the modules themselves, e.g. ex.claims.CLOSE_FRACTION
