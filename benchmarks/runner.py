"""Runs a benchmark suite: each run trains, is saved as it finishes, and is skipped when re-run.

An interrupted suite keeps every finished run (``runs/<run_id>/summary.json``); running the same
command again resumes with the runs that are missing, then rewrites the report. A run that fails
leaves ``runs/<run_id>/error.txt`` and the others go on. The runs execute on a backend
(``backends``): in this process by default, or as tasks on a Ray cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path

import jax

from cocoa import agents, envs
from cocoa.benchmarks import backends, presets, records
from cocoa.benchmarks.report import write_report
from cocoa.benchmarks.suites import RunSpec, Suite
from cocoa.train import train


def run_dir(out_dir: str | Path, spec: RunSpec) -> Path:
    return Path(out_dir) / "runs" / spec.run_id


def is_finished(out_dir: str | Path, spec: RunSpec) -> bool:
    summary = records.load_summary(run_dir(out_dir, spec))
    return summary is not None and summary.get("config") == spec.to_dict()


def changed_environments(env_name: str, env_params: dict, env_changes: dict) -> dict:
    """{update: the environment from that update on}: ``env_params`` with every change up to that
    update applied, in order."""
    in_force, environments = dict(env_params), {}
    for update in sorted(env_changes, key=int):
        in_force.update(env_changes[update])
        environments[int(update)] = envs.make(env_name, **in_force)
    return environments


def with_reward_support(agent_name: str, agent_config: dict, environments) -> dict:
    """``agent_config`` with ``reward_values`` set to the union of the tabular environments' reward
    values, for an agent that takes them and has none set: a model over rewards must know the
    rewards of every environment it will meet (a reward switch adds new ones)."""
    support = tuple(sorted({float(v) for env in environments if env.is_tabular
                            for v in env.tabular_mdp().reward_values}))
    if support and "reward_values" in agents.estimator_parameters(agent_name) and "reward_values" not in agent_config:
        return {**agent_config, "reward_values": support}
    return agent_config


def shadow_config(env_name: str, env_params: dict, agent_config: dict, name: str, *,
                  keep_model_learning_rate: bool = False, paper_settings: bool = True) -> dict:
    """A shadow's options: the main agent's shared ones (the same policy), and its own model learning
    rate (its paper setting) unless the main one is to be kept."""
    config = {k: v for k, v in agent_config.items() if k in agents.agent_parameters()}
    if not keep_model_learning_rate:
        config.pop("model_learning_rate", None)
        own = presets.preset_agent_config(env_name, env_params, name)[0] if paper_settings else {}
        if "model_learning_rate" in own:
            config["model_learning_rate"] = own["model_learning_rate"]
    return config


def shadow_recorder(agent, shadows, *, samples: int, seed: int, first_step_only: bool):
    """(rows, on_shadows): a ``train`` callback that appends the shadows' gradient quality at each
    evaluation (``cocoa.shadow.shadow_quality``) to ``rows``."""
    rows: list[dict] = []

    def measure(update, agent_states, shadow_states, env_in_force):
        from cocoa.shadow import shadow_quality

        rows.extend(shadow_quality(env_in_force, agent, shadows, update, agent_states, shadow_states,
                                   samples=samples, seed=seed, first_step_only=first_step_only))

    return rows, measure


def train_run(spec: RunSpec, progress: bool = True) -> dict:
    """Trains one run (its seeds vmapped, compiled once); returns ``records.run_record``, with
    ``shadow_rows`` (``cocoa.shadow.shadow_quality``'s records) when the run has shadows."""
    env = envs.make(spec.env, **spec.env_params)
    env_changes = changed_environments(spec.env, spec.env_params, spec.env_changes)
    support = lambda name, config: (with_reward_support(name, config, [env, *env_changes.values()])
                                    if env_changes else config)
    agent = agents.make_for_env(spec.agent, env, **support(spec.agent, spec.agent_config))
    shadows = [agents.make_for_env(name, env, **support(name, shadow_config(spec.env, spec.env_params,
                                                                           spec.agent_config, name)))
               for name in spec.shadows]
    shadow_rows, measure = shadow_recorder(agent, shadows, samples=spec.shadow_samples, seed=spec.train.seed,
                                           first_step_only=spec.shadow_first_step_only)
    result = train(env, agent, spec.train, progress=progress, env_changes=env_changes or None,
                   shadows=shadows, on_shadows=measure if shadows else None)
    record = records.run_record(spec.to_dict(), result)
    if shadows:
        record["shadow_rows"] = shadow_rows
    if spec.credit_matrix:
        record["credit_matrix"] = credit_matrices(env, spec.agent, agent, jax.tree.map(lambda x: x[0], result.final_state))
    return record


def credit_matrices(env, agent_name: str, agent, state) -> dict:
    """Task interleaving's context credit matrix (``cocoa.disentangling``) of one seed's final
    ``state``: with the agent's own coefficients and with the oracle's at the same policy."""
    from cocoa.disentangling import context_credit_matrix

    exact = agents.make_for_env(agent_name if agents.is_exact(agent_name) else agent_name + "-gt", env)
    exact_state = dataclasses.replace(exact.init(jax.random.PRNGKey(0), env.observation_shape),
                                      policy_params=state.policy_params)
    return {"learned": context_credit_matrix(env, agent, state)[0].tolist(),
            "exact": context_credit_matrix(env, exact, exact_state)[0].tolist()}


def run_one(spec: RunSpec, out_dir: str | Path, progress: bool = True) -> dict:
    """Trains one run and saves it; returns its summary."""
    return records.save_record(run_dir(out_dir, spec), train_run(spec, progress))


def failures(suite: Suite, out_dir: str | Path) -> dict[str, str]:
    """run_id -> why, for every run of ``suite`` that failed and has not finished since."""
    return {spec.run_id: message for spec in suite.runs
            if not is_finished(out_dir, spec) and (message := records.load_failure(run_dir(out_dir, spec)))}


def run_suite(suite: Suite, out_dir: str | Path, *, progress: bool = True, log=None,
              backend=None) -> Path:
    """Runs every unfinished run of ``suite`` into ``out_dir`` on ``backend`` (in this process by
    default) and writes the report; returns its path. Failed runs are listed by ``failures``."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    backend = backend or backends.LocalBackend()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = len(suite.runs)
    labels = {spec.run_id: f"[{index}/{total}] {spec.agent} on {spec.env} {spec.env_params}"
              for index, spec in enumerate(suite.runs, start=1)}
    pending = []
    for spec in suite.runs:
        if is_finished(out_dir, spec):
            log(f"{labels[spec.run_id]}: already finished, kept")
        else:
            pending.append(spec)
    if pending:
        log(f"{len(pending)} run(s) to train on the {backend.name} backend")
    # closing: an interrupt stops the backend at once (a Ray backend cancels the runs still out).
    with contextlib.closing(backend.map(train_run, pending, progress=progress)) as outcomes:
        for index, outcome in outcomes:
            spec = pending[index]
            if isinstance(outcome, backends.RunFailure):
                records.save_failure(run_dir(out_dir, spec), outcome.message, outcome.details)
                log(f"{labels[spec.run_id]}: FAILED: {outcome.message}")
                continue
            summary = records.save_record(run_dir(out_dir, spec), outcome)
            if outcome.get("shadow_rows"):
                from cocoa import gradient_report

                gradient_report.plot_shadow_curves(outcome["shadow_rows"], run_dir(out_dir, spec) / records.SHADOW_PLOT_FILE)
            log(f"{labels[spec.run_id]}: {spec.train.seeds} seeds x {spec.train.updates} updates done in "
                f"{summary['wall_seconds']:.1f} s ({summary['env_steps_per_second']:,.0f} env-steps/s)")
    report = write_report(suite, out_dir)
    log(f"report: {report}")
    return report
