"""Each claim's discussion, for chapters 05-08: what the paper says, what this run shows, the verdict on each
seed, the noise the verdict must clear, and the known reasons why the kit and the paper may differ.

Every number in it is generated from the results (or is the paper's own); :data:`WHY` holds only reasons,
without the kit's numbers, so a republished run cannot leave the text stale."""
from __future__ import annotations

from .claims import CLAIMS_BY_ID, evaluate_claim, on_common_seeds, paper_values
from .display import VERDICT_MARKS
from .tables import METRICS, get_table

# Why the kit's verdict may differ from the paper's, claim by claim (docs/paper_vs_code.md has the measurements).
WHY = {
    "C1": "Both teachers face the decomposition ambiguity of chapter 02; only L_RIC ties the canonical frames of "
          "different views together. The paper's REP-only teacher trained 40 epochs, long enough to drift far; "
          "the kit keeps every teacher at its best validation checkpoint, which can stop the REP-only teacher "
          "before it drifts, so the gap may be smaller than the paper's. The kit's tutorial profile draws the "
          "cycle's rotations about the camera's vertical (the upright cycle, chapter 03) and adds a handedness "
          "prior that the paper does not have (a body looks where its nose points, chapter 02b), to both "
          "teachers; the paper leaves the cycle's distribution unstated.",
    "C2": "'REC only' is a student without a teacher: nothing but the cycle's own consistency fixes the sign "
          "and the size of its depths, so how bad it gets depends on how long it trains and which checkpoint "
          "is kept. 'No REC' is the comparison that tests L_REC itself: what the equivariance cycle adds "
          "to distillation from the same teacher.",
    "C3": "The student can only beat its teacher where L_REC and its own smoothness improve on the depths it "
          "distils. At the tutorial profile's scale the student reaches its teacher's level on the validation "
          "clips within about 450 steps and then levels off (docs/paper_vs_code.md, 'The student's plateau'); "
          "the profile distils the teacher's mean over six views of each pose and trains the student at twice "
          "the teacher's rate; with both it leads by less than the seeds' noise. Trained on all poses "
          "from a longer-trained teacher, for thousands of steps, it pulls ahead on both metrics (chapter 04, "
          "section 7b). The kit's teachers also have a handedness prior the paper does not "
          "have (chapter 02b), which makes them harder to beat: without it their depth sign was a coin toss on "
          "Bandai. Read the report's mirror rate beside the verdict. T3's full model and REP + RIC teacher are "
          "these same two models, so the pair is checked once.",
    "C4": "As C3, in P-MPJPE: after the Procrustes alignment only the shape is scored, so a student that "
          "smooths the teacher's depths can win in one metric and not the other.",
    "C5": "Without MPI-INF-3DHP data (`--test-data 3dhp:DIR`) the kit computes Table 2 on the training "
          "data's own test split as a stand-in and labels it so; a stand-in is not the paper's claim, so "
          "the claim is not checked. With the data, the rows are tested on it.",
    "C6": "The kit's C3DPO-style teacher is not C3DPO's network: it shares the dictionary teacher's trunk "
          "and its training recipe, which was chosen for the dictionary teacher on Bandai, and replaces L_RIC "
          "by C3DPO's canonicalisation loss. So the kit compares the two objectives on one trunk; the paper "
          "compares two published models. Why the canonicalisation objective does as well or better at this "
          "scale has not been measured further.",
    "C7": "The two students share teacher, data and recipe; their gap in the paper is a few mm on Human3.6M "
          "after 30 epochs. At this scale read it against the seed noise: a verdict that changes with the "
          "seed says the kit cannot tell them apart.",
    "C8": "A sweep compares near-equal runs: read the span of its rows against the seed noise (the line above). The "
          "recipe (learning rate, epochs, the upright cycle) was chosen at the paper's weights, which favours "
          "them where anything does; a weight that wins by less than the noise is not a finding.",
    "C9": "As C8: the student's two losses both start from the teacher's answer, so the weights only shift "
          "how far the student may move from it, and the sweep is flat wherever the teacher dominates.",
    "C10": "The paper gives no size for its AGCN trunk; the kit's row uses the AGCN student's (64 channels per "
           "joint, 8 blocks, set through `teacher_hidden` and `teacher_blocks`). The "
           "teacher's outputs are global (K coefficients, one rotation), which a per-joint trunk fits less "
           "directly. With the tutorial profile's 6D camera head this row's teacher did not learn its depth "
           "signs (its mirror rate in the report says so): read that verdict as the failure, not the trunk's "
           "accuracy (docs/paper_vs_code.md, \"Which signs the 6D teacher misses\").",
    "C11": "The learnt graph adds long-range edges to the skeleton's bones; the paper's gains are a few mm, "
           "the subtlest ablation of the paper, so at this scale expect them near the seed noise.",
    "C12": "The best dictionary size depends on the data: K atoms must span the poses of the training set, "
           "and Bandai's motions (three actors, retargeted to one character skeleton) are not Human3.6M's. "
           "Read the curve against the seed noise (the line above).",
    "C13": "As C12. A small K cannot express every pose; a large K lets the dictionary fit depth-flipped and "
           "distorted poses that reproject as well, and L_RIC has to carry the whole burden. The kit's K = 32 "
           "teachers with the tutorial profile's 6D camera head show it: they keep the body's facing but get "
           "their arms' depth signs right only about half the time in the profile's steps (trained 22 epochs "
           "instead of 6, seeds 0 and 2 learn them, seed 1 partly), where the authors' axis-angle head had "
           "learnt them in time, so this verdict says as much about the camera head and the schedule as about K "
           "(docs/paper_vs_code.md, \"Which signs the 6D teacher misses\").",
}


def scale_text(run: dict | None) -> str:
    """How small the run was, from its profile and overrides (generated: no typed sizes)."""
    from ..config import make_config
    if not run or run.get("profile") not in ("smoke", "tutorial"):
        return ""
    cfg = run.get("recipe") or make_config(run["profile"], run.get("variant", "paper"),
                                           **(run.get("overrides") or {})).to_dict()  # runs before the field
    n, batch = cfg["max_train"], cfg["batch_size"]
    if not n:
        return ""
    steps = lambda epochs: f"{n // batch * epochs:,}"  # noqa: E731
    return (f"This run is small ({run['profile']} profile: at most {n:,} training poses, "
            f"{cfg['teacher_epochs']} + {cfg['student_epochs']} epochs at batch {batch}, about "
            f"{steps(cfg['teacher_epochs'])} teacher and {steps(cfg['student_epochs'])} student steps; the paper: all of "
            "Human3.6M, 40 + 30 epochs) and keeps each model's best checkpoint on validation clips of the training "
            "subjects.")


def claim_discussion(result: dict, values: dict, run: dict | None = None) -> str:
    """A claim's discussion as text: the paper's comparison and verdict, this run's (from ``result``, a claim
    result of :func:`add_seed_verdicts`), the verdict on each seed, the seed noise against the gaps, and why
    the two may differ (``run``: the run's entry of results.json, for how small it was)."""
    claim = CLAIMS_BY_ID[result["id"]]
    metric = METRICS[claim.metric]
    paper = evaluate_claim(claim, paper_values(), source="paper")
    paper_text = ("; ".join(paper["details"]) if paper["passed"] is not None
                  else "no numbers in the paper's text for these rows (a figure only)")
    lines = [f"{VERDICT_MARKS[result['passed']]} {claim.id} · {claim.statement}",
             f"  paper: {VERDICT_MARKS[paper['passed']]} {paper_text}"]
    seeds = result.get("seeds") or []
    on = f" (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})" if seeds else ""
    lines.append(f"  this run{on}: {VERDICT_MARKS[result['passed']]} " + "; ".join(
        d for d in result["details"] if not d.startswith("compared on seed")))
    if result.get("by_seed"):
        lines.append("  on each seed alone: " + " ".join(f"{VERDICT_MARKS[v]} (seed {s})"
                                                        for s, v in result["by_seed"].items()))
    noise = _noise_line(claim, values, metric) if seeds else ""
    if noise:
        lines.append(f"  {noise}")
    lines.append(f"  why they may differ: {WHY[claim.id]} {scale_text(run)}".rstrip())
    return "\n".join(lines)


def _noise_line(claim, values: dict, metric) -> str:
    refs = claim.refs()
    cells = [values.get((t, r, claim.metric)) for t, r in refs]
    stds = [c["std"] for c in cells if c and c.get("n", 0) > 1]
    unit, d = metric.unit, metric.digits
    text = (f"seed noise: std over seeds up to {max(stds):.{d}f} {unit} on the rows measured on several seeds"
            if stds else "seed noise: not measured (one seed per row)")
    if claim.kind == "near_best":
        common, seeds, _ = on_common_seeds(values, refs, claim.metric)
        means = [common[(t, r, claim.metric)]["mean"] for t, r in refs if common.get((t, r, claim.metric), {}).get("n")]
        on = f" on seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
        text += (f"; the {len(means)} rows of {claim.table}{on} span {min(means):.{d}f}-{max(means):.{d}f} {unit} "
                 f"(range {max(means) - min(means):.{d}f})")
    return text


def discussion_text(claims: list, values: dict, run: dict | None = None) -> str:
    """The discussions of several claims, separated by blank lines."""
    return "\n\n".join(claim_discussion(c, values, run) for c in claims)
