"""``cocoa bench claims``: every claim of the COCOA and COALA papers that runs here, in one report.

It runs three parts into ``OUT/``, each resumable and each on the chosen backend:

- ``OUT/key-to-door/``: the ``claims-key-to-door`` training suite (COCOA-reward at L = 23 for
  2,000 updates; REINFORCE and Advantage at L = 23, and with COCOA-reward at L = 103, for 10,000),
  with its own report;
- ``OUT/tree/``: the ``tree-variance`` suite, the tree's exact gradient variance at each state
  overlap (``overlap<o>.json``), with its own report;
- ``OUT/coala/``: the ``coala`` suite, with its own report.

Longer suites fill more rows when they have been run into the same folder, none of them part of
this command's budget: the paper's key-to-door sweep (``cocoa bench key-to-door-paper --out
OUT/key-to-door``, hours; its L = 103 runs are this command's), shadow training
(``cocoa bench shadow-key-to-door --out OUT/shadow-key-to-door``, hours), the sequence policies
(``cocoa bench coala-sequence --out OUT/coala-sequence``, about 12 minutes; ``cocoa bench coala-hawk
--out OUT/coala-hawk``, about 2 3/4 hours) and CleanUp-lite (``cocoa bench coala-cleanup --out
OUT/coala-cleanup``, about 7 minutes; at the paper's scale ``cocoa bench coala-cleanup-paper --out
OUT/coala-cleanup-paper``, an accelerator's job).

Then ``OUT/report.md`` (the claims table, the figures and a paragraph per part) and
``OUT/claims.json`` (the same rows: ``claim_table``). Rows that need more compute than this
command's budget say "not run" and give the command that runs them.
"""

from __future__ import annotations

import datetime
import json
import platform
from pathlib import Path

from cocoa.benchmarks import coala, cocoa_claims, records, runner, suites, tree_variance
from cocoa.benchmarks.claim_table import markdown
from cocoa.benchmarks.run_stats import mean_and_error, per_seed_at

KEY_TO_DOOR = "claims-key-to-door"
PAPER_SWEEP = "key-to-door-paper"  # its runs read from OUT/key-to-door too, where the L = 103 ones are shared
SHADOW = "shadow-key-to-door"  # read from OUT/shadow-key-to-door
TREE_FIGURE = tree_variance.FIGURE  # the claims report draws the tree's figures beside it too
TREE_BARS = tree_variance.BARS


def run(out_dir, *, progress: bool = True, backend=None, log=None) -> tuple[Path, list[str]]:
    """Runs whatever of the three parts is not finished, then writes the claims report. Returns
    its path and the failed runs (names), which the report lists too."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suite = suites.get(KEY_TO_DOOR)
    runner.run_suite(suite, out / "key-to-door", progress=progress, backend=backend, log=log)
    _, tree_failed = tree_variance.run_suite(out / "tree", progress=progress, backend=backend)
    coala.run_suite(out / "coala", progress=progress, backend=backend)
    failed = ([f"key-to-door/{name}" for name in runner.failures(suite, out / "key-to-door")]
              + [f"tree/{name}" for name in tree_failed] + [f"coala/{name}" for name in coala.failures(out / "coala")])
    return write_report(out, failed), failed


def finished_runs(folder, *suite_names) -> list[tuple]:
    """(RunSpec, evaluation rows, shadow rows) of the finished runs of these suites in ``folder``,
    each run once (suites share runs by id)."""
    found = {}
    for name in suite_names:
        for spec in suites.get(name).runs:
            if spec.run_id not in found and runner.is_finished(folder, spec):
                run_dir = runner.run_dir(folder, spec)
                found[spec.run_id] = (spec, records.load_metrics(run_dir), records.load_shadow(run_dir))
    return list(found.values())


def _key_to_door_words(runs: dict) -> str:
    parts = []
    for (agent, length), rows in sorted(runs.items(), key=lambda item: (item[0][1], item[0][0])):
        mean, error = mean_and_error(per_seed_at(rows, "treasure_rate"))
        last = max(r["update"] for r in rows)
        parts.append(f"{agent} at L = {length}: {mean:.2f} ± {error:.2f} after {last:,} updates")
    if not parts:
        return "No key-to-door run has finished yet."
    return ("Final treasure rate (mean ± standard error over 8 seeds): " + "; ".join(parts)
            + ". The learning curves (treasure rate against training episodes, a band of one standard error) "
            "are in the part's own report.")


def write_report(out_dir, failed: list[str] = ()) -> Path:
    """``OUT/report.md`` and ``OUT/claims.json`` from whatever of the three parts has finished."""
    out = Path(out_dir)
    k2d = cocoa_claims.key_to_door_index(
        (spec, rows) for spec, rows, _ in finished_runs(out / "key-to-door", KEY_TO_DOOR, PAPER_SWEEP))
    shadow = cocoa_claims.shadow_index(finished_runs(out / SHADOW, SHADOW))
    tree = tree_variance.load(out / "tree")
    rows = (cocoa_claims.key_to_door_rows(k2d) + cocoa_claims.shadow_rows(shadow) + cocoa_claims.tree_rows(tree)
            + coala.claims([record for suite in coala.SUITES
                            for record in coala.finished_records(out / suite, coala.runs_of(suite))]))
    records.atomic_write(out / "claims.json", json.dumps(rows, indent=1))
    text = ["# cocoa: the papers' claims, checked here", "",
            f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} on {platform.node()} "
            f"({platform.machine()}, Python {platform.python_version()}). Each row: the claim, where the paper "
            "makes it, what ran here, the measured figure with its uncertainty, the threshold and the verdict; "
            "the last column links the page that discusses it (failures included).", "",
            *markdown(rows, out), ""]
    if failed:
        text += [f"**{len(failed)} run(s) failed** (see each part's report; re-run to retry): "
                 + ", ".join(f"`{name}`" for name in failed), ""]
    text += ["## Key-to-door", "", _key_to_door_words(k2d), ""]
    if (out / "key-to-door" / "learning_curves.png").exists():
        text += ["![key-to-door learning curves](key-to-door/learning_curves.png)", ""]
    text += ["## The tree: variance against state overlap", "", tree_variance.words(tree), "",
             *tree_variance.figures(tree, out / TREE_FIGURE, out / TREE_BARS)]
    text += ["## The iterated prisoner's dilemma (COALA)", "",
             "Meta agents' reward per step against naive learners and against each other, under each rule, and "
             "the cooperation within a meta-trajectory: the part's report, `coala/report.md`.", ""]
    for name in ("curves.png", "cooperation.png"):
        if (out / "coala" / name).exists():
            text += [f"![{name}](coala/{name})", ""]
    records.atomic_write(out / "report.md", "\n".join(text))
    return out / "report.md"

