"""``cocoa bench tree-variance``: the exact gradient variance of the estimators on the tree against the
state overlap, the COCOA paper's tree figure (Meulemans et al., NeurIPS 2023, arXiv 2306.16803).

Each overlap is one item (``cocoa_claims.tree_records``: every trajectory enumerated, oracle models,
the shared initial policy), saved as ``OUT/overlap<o>.json`` when it finishes, so an interrupted run
resumes; then ``OUT/report.md`` (the figure, dB bars at the two ends, a paragraph and the claims
the measurements check) and ``OUT/claims.json``. ``cocoa bench claims`` runs it into ``OUT/tree/``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from cocoa.benchmarks import backends, cocoa_claims, records
from cocoa.benchmarks.claim_table import markdown

NAME = "tree-variance"
DESCRIPTION = ("The tree's exact gradient variance against the state overlap (0..6): REINFORCE and the exact "
               "variants of Advantage, HCA-state, COCOA-reward and Q-critic, every trajectory enumerated "
               "(about a minute here).")
FIGURE = "tree_variance.png"
BARS = "tree_db.png"


def _path(out: Path, overlap: int) -> Path:
    return out / f"overlap{overlap}.json"


def run(out_dir, *, progress: bool = True, backend=None) -> dict[int, str]:
    """Measures the overlaps not saved in ``out_dir`` yet, one item each; returns overlap -> why it failed."""
    out = Path(out_dir)
    backend = backend or backends.LocalBackend()
    pending = [o for o in cocoa_claims.TREE_OVERLAPS if not _path(out, o).exists()]
    failed = {}
    with contextlib.closing(backend.map(cocoa_claims.tree_records, pending, progress=progress)) as outcomes:
        for index, outcome in outcomes:
            if isinstance(outcome, backends.RunFailure):
                failed[pending[index]] = outcome.message
            else:
                records.atomic_write(_path(out, pending[index]), json.dumps(outcome, indent=1))
    return failed


def load(out_dir) -> list[dict]:
    """The saved records of every overlap measured in ``out_dir``."""
    out = Path(out_dir)
    return [r for o in cocoa_claims.TREE_OVERLAPS if _path(out, o).exists()
            for r in json.loads(_path(out, o).read_text())]


def plot(tree: list[dict], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4))
    for agent in cocoa_claims.TREE_AGENTS:
        points = sorted((r["env_params"]["overlap"], r["variance_db"]) for r in tree if r["agent"] == agent)
        if points:
            axis.plot(*zip(*points), marker="o", label=agent)
    axis.set(xlabel="state overlap o", ylabel="gradient variance / ||g*||^2 (dB)",
             title="Tree-v0 (depth 4, branching 6), shared initial policy: exact variance")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def words(tree: list[dict]) -> str:
    by = {(r["env_params"]["overlap"], r["agent"]): r["variance_db"] for r in tree}
    overlaps = sorted({o for o, _ in by})
    if not overlaps:
        return "The tree measurements have not run yet."
    cells = "; ".join(f"overlap {o}: " + ", ".join(f"{a} {by[(o, a)]:.1f} dB" for a in cocoa_claims.TREE_AGENTS
                                                   if (o, a) in by) for o in dict.fromkeys((overlaps[0], overlaps[-1])))
    return ("Exact per-trajectory gradient variance, relative to the exact gradient's squared norm, of each estimator "
            f"with oracle models, against the overlap (the figure). {cells}.")


def figures(tree: list[dict], figure_path: Path, bars_path: Path) -> list[str]:
    """Draws the variance figure and the dB bars at the two ends of the overlap range; returns the
    report's lines that show them, linked relative to the report's folder ``figure_path.parent``."""
    lines = []
    if tree:
        plot(tree, figure_path)
        lines += [f"![tree variance against overlap]({figure_path.name})", ""]
    ends = [r for r in tree
            if r["env_params"]["overlap"] in (min(cocoa_claims.TREE_OVERLAPS), max(cocoa_claims.TREE_OVERLAPS))]
    if ends:
        from cocoa import gradient_report

        gradient_report.plot(ends, bars_path)
        lines += ["Bias, variance and SNR in dB at the two ends of the overlap range (exact):", "",
                  f"![tree bias, variance and SNR in dB]({bars_path.name})", ""]
    return lines


def write_report(out_dir, failed: dict[int, str] | None = None) -> Path:
    """``OUT/report.md`` and ``OUT/claims.json`` from the overlaps measured so far."""
    out = Path(out_dir)
    tree = load(out)
    rows = cocoa_claims.tree_rows(tree)
    records.atomic_write(out / "claims.json", json.dumps(rows, indent=1))
    text = ["# The tree: gradient variance against state overlap", "", words(tree), "",
            *figures(tree, out / FIGURE, out / BARS), "## Claims", "", *markdown(rows, out), ""]
    if failed:
        text += [f"**{len(failed)} overlap(s) failed** (re-run to retry): "
                 + "; ".join(f"overlap {o}: {why}" for o, why in sorted(failed.items())), ""]
    records.atomic_write(out / "report.md", "\n".join(text))
    return out / "report.md"


def run_suite(out_dir, *, progress: bool = True, backend=None) -> tuple[Path, list[str]]:
    """``run`` then ``write_report``; returns the report's path and the failed items' names."""
    failed = run(out_dir, progress=progress, backend=backend)
    return write_report(out_dir, failed), [f"overlap{o}" for o in sorted(failed)]
