"""The ``cocoa`` command: ``cocoa train``, ``cocoa bench``, ``cocoa gradients`` and ``cocoa list``.

Environment parameters are passed as options named after them, e.g. ``--length 43`` for
key-to-door (``cocoa list`` shows every environment's parameters and defaults).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

_TRAIN_EXAMPLE = ("cocoa train --env LinearKeyToDoor-v0 --length 23 --agent advantage "
                  "--updates 2000 --seeds 4 --out runs/advantage-L23")


class CliError(Exception):
    """A user error on the command line: printed without a traceback."""


def check_output_folder(path: str | Path, option: str = "--out") -> Path:
    """Checks, before any long work, that ``path`` is (or can be made) a folder that takes files.

    Folders made for the check are removed again, so that a run that fails later leaves nothing.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CliError(f"{option} {str(path)!r} is a file; expected a folder (it is created if missing)")
    made = [folder for folder in (path, *path.parents) if not folder.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()  # can a file be made there?
    except OSError as error:
        raise CliError(f"{option} {str(path)!r} is not a writable folder: {error.strerror or error}") from None
    finally:
        for folder in made:  # deepest first; each was empty when made
            if folder.is_dir():
                folder.rmdir()
    return path


def _parse_value(name: str, text: str, default, label: str | None = None):
    """Converts ``text`` to the type of the parameter's default (``label`` names it in errors)."""
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, (tuple, list)):
            return tuple(float(part) for part in text.split(","))
        if isinstance(default, float) or default is None:
            return float(text)
        return text
    except ValueError:
        expected = type(default).__name__ if default is not None else "float"
        label = label or f"--{name.replace('_', '-')}"
        article = "an" if expected[0] in "aeiou" else "a"
        raise CliError(f"{label} expects {article} {expected}; got {text!r}") from None


def _literal(text: str):
    """A Gymnasium make argument from the command line: a Python literal (true/false too), else the text."""
    import ast

    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_env_params(env_name: str, extra: list[str], options: list[str] = ()) -> dict:
    """Leftover ``--name value`` options and ``--env-option NAME=VALUE`` items -> the environment's parameters.

    A registered environment's parameters are typed like their defaults; a ``gymnasium:<id>``
    environment takes ``horizon`` and any of Gymnasium's make arguments, read as Python literals.
    """
    from cocoa import envs
    from cocoa.envs.gymnasium_source import PREFIX

    gymnasium_env = env_name.startswith(PREFIX)
    accepted = {} if gymnasium_env else envs.parameters(env_name)
    pairs, index = [], 0
    while index < len(extra):
        option = extra[index]
        if not option.startswith("--"):
            raise CliError(f"unexpected argument {option!r}")
        name, _, value = option[2:].partition("=")
        if not value:
            index += 1
            if index >= len(extra):
                raise CliError(f"--{name} needs a value")
            value = extra[index]
        pairs.append((name.replace("-", "_"), value, f"--{name}"))
        index += 1
    for item in options:
        name, separator, value = item.partition("=")
        if not separator or not name or not value:
            raise CliError(f"--env-option expects NAME=VALUE; got {item!r}")
        pairs.append((name.replace("-", "_"), value, f"--env-option {name}"))

    params = {}
    for name, value, label in pairs:
        if gymnasium_env:
            params[name] = _literal(value)
            continue
        if name not in accepted:
            listing = ", ".join(f"--{k.replace('_', '-')} (default {v!r})" for k, v in accepted.items())
            raise CliError(f"unknown option {label} for {env_name}; its parameters are: {listing}")
        params[name] = _parse_value(name, value, accepted[name], label=label)
    return params


def make_env(name: str, extra: list[str], options: list[str] = ()):
    """The environment ``name`` built from leftover ``--param value`` options and ``--env-option``s, and those params."""
    from cocoa import envs

    params = parse_env_params(name, extra, options)
    return envs.make(name, **params), params


def parse_agent_options(agent_name: str, items: list[str]) -> dict:
    """``NAME=VALUE`` items -> the agent's options (the estimator's own and the shared ones), typed like their defaults."""
    from cocoa import agents

    accepted = {**agents.agent_parameters(), **agents.estimator_parameters(agent_name)}
    options = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not value:
            raise CliError(f"--agent-option expects NAME=VALUE; got {item!r}")
        if name not in accepted:
            raise CliError(f"agent {agent_name!r} has no option {name!r}; its options are: "
                           + (", ".join(f"{k}={v!r}" for k, v in accepted.items()) or "none"))
        default = accepted[name]
        if default is None and "," in value:
            default = ()
        options[name] = _parse_value(name, value, default, label=f"--agent-option {name}")
        if isinstance(options[name], tuple) and all(float(v).is_integer() for v in options[name]):
            options[name] = tuple(int(v) for v in options[name])  # layer sizes
    return options


def _add_train_parser(commands):
    parser = commands.add_parser(
        "train", help="train an agent on an environment, for several seeds at once",
        description=f"Train an agent for several seeds in parallel.\nExample: {_TRAIN_EXAMPLE}\n"
                    "Environment parameters go as options named after them (e.g. --length 23).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="LinearKeyToDoor-v0",
                        help="environment name (see `cocoa list`), or gymnasium:<id> for any Gymnasium environment")
    parser.add_argument("--env-option", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment parameter, e.g. length=43, or for gymnasium:<id> horizon=100 or one "
                             "of Gymnasium's make arguments such as is_slippery=false (repeatable)")
    parser.add_argument("--env-change", action="append", default=[], metavar="UPDATE:NAME=VALUE",
                        help="from update UPDATE on, train with environment parameter NAME set to VALUE, e.g. "
                             "5000:treasure_reward=-0.2 (key-to-door's reward switch; repeatable)")
    parser.add_argument("--agent", default="advantage", help="agent name (see `cocoa list`)")
    parser.add_argument("--updates", type=int, default=2000, help="policy updates per seed (default 2000)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds trained in parallel (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    parser.add_argument("--batch", type=int, default=8, help="episodes per update (default 8, as in the paper)")
    parser.add_argument("--eval-interval", type=int, default=100, help="updates between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=64, help="episodes per evaluation and seed")
    parser.add_argument("--learning-rate", type=float,
                        help="policy learning rate (default: the paper's for this agent on key-to-door, else 1e-3)")
    parser.add_argument("--model-learning-rate", type=float,
                        help="model (critic, hindsight model ...) learning rate (default: the paper's on "
                             "key-to-door, else 1e-3)")
    parser.add_argument("--epsilon", type=float, help="epsilon-mixing of the behaviour policy (default 0.05)")
    parser.add_argument("--entropy", type=float, dest="entropy_coef", help="entropy bonus coefficient")
    parser.add_argument("--max-grad-norm", type=float, help="clip gradients to this global norm")
    parser.add_argument("--agent-option", action="append", default=[], metavar="NAME=VALUE",
                        help="an agent option, e.g. td_lambda=0.9, groups=4 or model_first=false (repeatable; "
                             "`cocoa list`)")
    parser.add_argument("--no-paper-settings", action="store_true",
                        help="start from the library defaults instead of the preset settings for this agent and "
                             "environment (the COCOA paper's on key-to-door, tuned ones on FrozenLake: learning "
                             "rates, entropy, ...; see docs/training.md)")
    parser.add_argument("--shadow", default="", metavar="A,B,C",
                        help="shadow estimators: each trains its model on the same batches and is measured "
                             "against the oracle at every evaluation (writes shadow.csv and shadow.png)")
    parser.add_argument("--shadow-samples", type=int, default=256,
                        help="trajectories per shadow measurement (default 256)")
    parser.add_argument("--shadow-first-step-only", action="store_true",
                        help="measure the shadows on the t = 0 term of the gradient only (the key decision)")
    parser.add_argument("--out", required=True, help="output folder for metrics.csv and summary.json")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def parse_env_changes(env_name: str, items: list[str], updates: int) -> dict:
    """``UPDATE:NAME=VALUE`` items -> {update: the params changed then}."""
    changes: dict[int, dict] = {}
    for item in items:
        update, colon, assignment = item.partition(":")
        try:
            update = int(update)
        except ValueError:
            update = None
        if not colon or update is None or "=" not in assignment:
            raise CliError(f"--env-change expects UPDATE:NAME=VALUE (e.g. 5000:treasure_reward=-0.2); got {item!r}")
        if not 0 < update < updates:
            raise CliError(f"--env-change {item!r}: the update must lie in [1, {updates - 1}] (--updates {updates})")
        changes.setdefault(update, {}).update(parse_env_params(env_name, [], [assignment]))
    return changes


def _train(args, extra) -> int:
    from cocoa import agents
    from cocoa.benchmarks import presets, records, runner
    from cocoa.train import TrainConfig, train

    env, env_params = make_env(args.env, extra, args.env_option)
    check_output_folder(args.out)
    agent_config, source = ({}, "") if args.no_paper_settings else presets.preset_agent_config(
        args.env, env_params, args.agent)
    if agent_config:
        print(f"{args.agent} on {args.env}: {source} "
              + ", ".join(f"{k}={v}" for k, v in agent_config.items()) + " (flags override them)")
    agent_config.update({k: getattr(args, k) for k in
                         ("learning_rate", "model_learning_rate", "epsilon", "entropy_coef", "max_grad_norm")
                         if getattr(args, k) is not None})
    agent_config.update(parse_agent_options(args.agent, args.agent_option))
    changes = parse_env_changes(args.env, args.env_change, args.updates)
    env_changes = runner.changed_environments(args.env, env_params, changes)
    with_support = lambda name, config: (runner.with_reward_support(name, config, [env, *env_changes.values()])
                                         if env_changes else config)
    agent = agents.make_for_env(args.agent, env, **with_support(args.agent, agent_config))
    config = TrainConfig(updates=args.updates, batch_size=args.batch, seeds=args.seeds, seed=args.seed,
                         eval_interval=args.eval_interval, eval_episodes=args.eval_episodes)
    shadow_names = [name.strip() for name in args.shadow.split(",") if name.strip()]
    if shadow_names and not env.is_tabular:
        raise CliError(f"--shadow needs the exact gradient, but {args.env} has no tabular form")
    if args.shadow_samples < 2:
        raise CliError(f"--shadow-samples must be at least 2; got {args.shadow_samples}")
    shadow_options = lambda name: runner.shadow_config(
        args.env, env_params, agent_config, name, keep_model_learning_rate=args.model_learning_rate is not None,
        paper_settings=not args.no_paper_settings)
    shadows = [agents.make_for_env(name, env, **with_support(name, shadow_options(name))) for name in shadow_names]
    shadow_rows, measure = runner.shadow_recorder(agent, shadows, samples=args.shadow_samples, seed=args.seed,
                                                  first_step_only=args.shadow_first_step_only)

    result = train(env, agent, config, progress=not args.no_progress, shadows=shadows, on_shadows=measure,
                   env_changes=env_changes)
    run_config = {"env": args.env, "env_params": env_params, "agent": args.agent, "agent_config": agent_config,
                  "train": vars(config)}
    if changes:
        run_config["env_changes"] = {str(update): params for update, params in changes.items()}
    summary = records.save_run(args.out, run_config, result)
    if shadows:
        from cocoa import gradient_report

        records.write_csv(Path(args.out) / "shadow.csv", shadow_rows, ["update", "seed", "agent"])
        gradient_report.plot_shadow_curves(shadow_rows, Path(args.out) / "shadow.png")
        print(f"wrote {Path(args.out) / 'shadow.csv'} and {Path(args.out) / 'shadow.png'}")
    finals = ", ".join(f"{k} {v:.3f}" for k, v in summary["final"].items())
    print(f"final (mean over {args.seeds} seeds): {finals}")
    print(f"{summary['env_steps_per_second']:,.0f} env-steps/s; compile {summary['compile_seconds']:.1f} s; "
          f"wrote {Path(args.out) / records.METRICS_FILE} and {Path(args.out) / records.SUMMARY_FILE}")
    return 0


def _bench(args, extra) -> int:
    from cocoa.benchmarks import backends, claims, coala, runner, suites, tree_variance

    if extra:
        raise CliError(f"unexpected arguments for bench: {' '.join(extra)}")
    if args.suite not in suites.names():
        suites.get(args.suite)  # the error that lists the known suites
    backend = backends.make(args.backend, address=args.address, cpus_per_run=args.cpus_per_run)
    out = check_output_folder(args.out or f"results/{args.suite}")
    progress = not args.no_progress
    if args.suite == suites.CLAIMS:
        report, failed = claims.run(out, progress=progress, backend=backend)
    elif args.suite == tree_variance.NAME:
        report, failed = tree_variance.run_suite(out, progress=progress, backend=backend)
    elif args.suite in coala.SUITES:
        runs = coala.runs_of(args.suite)
        report = coala.run_suite(out, runs, progress=progress, backend=backend, suite=args.suite)
        failed = coala.failures(out, runs)
    else:
        suite = suites.get(args.suite)
        report = runner.run_suite(suite, out, progress=progress, backend=backend)
        failed = runner.failures(suite, out)
    print(f"wrote {report}")
    if failed:
        print(f"{len(failed)} run(s) failed (listed in the report; re-run to retry): {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


_GRADIENTS_EXAMPLE = ("cocoa gradients --env LinearKeyToDoor-v0 --length 6 --agents reinforce,advantage,"
                      "advantage-gt --policy init --model-updates 500 --out results/gradients-L6")


def _add_gradients_parser(commands):
    parser = commands.add_parser(
        "gradients", help="bias, variance and SNR of agents' gradient estimators against the exact gradient",
        description="Measure each agent's policy-gradient estimator at one shared policy against the oracle's "
                    "exact gradient (docs/gradients.md) and write OUT/report.md, OUT/gradients.png and "
                    f"OUT/gradients.json.\nExample: {_GRADIENTS_EXAMPLE}\n"
                    "Environment parameters go as options named after them (e.g. --length 6).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="LinearKeyToDoor-v0",
                        help="a tabular environment (see `cocoa list`), or gymnasium:<id> with a P table")
    parser.add_argument("--env-option", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment parameter (as for `cocoa train`; repeatable)")
    parser.add_argument("--agents", default="reinforce,advantage,advantage-gt",
                        help="comma-separated agent names (see `cocoa list`)")
    parser.add_argument("--policy", default="init",
                        help="'init' (the initial MLP policy) or 'trained:N' (after N REINFORCE updates)")
    parser.add_argument("--samples", type=int, default=1000,
                        help="trajectories sampled when there are too many to enumerate (default 1000)")
    parser.add_argument("--max-enumerated", type=int, default=20_000,
                        help="enumerate every trajectory (exact variance) up to this many (default 20000)")
    parser.add_argument("--no-enumeration", action="store_true", help="always sample, never enumerate")
    parser.add_argument("--model-updates", type=int, default=200,
                        help="model training steps of each agent at the policy (default 200)")
    parser.add_argument("--model-batch", type=int, default=8, help="episodes per model step (default 8)")
    parser.add_argument("--batch", type=int, default=1,
                        help="episodes per gradient estimate: divides the variance (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the policy, samples and models (default 0)")
    parser.add_argument("--first-step-only", action="store_true",
                        help="keep only the t = 0 term of every gradient (the COCOA paper's key-to-door figures)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _gradients(args, extra) -> int:
    from cocoa import gradient_report, gradients

    env, env_params = make_env(args.env, extra, args.env_option)
    check_output_folder(args.out)
    names = [name.strip() for name in args.agents.split(",") if name.strip()]
    records = gradients.analyse(
        env, names, env_params=env_params, policy=args.policy, samples=args.samples,
        model_updates=args.model_updates, model_batch_size=args.model_batch, seed=args.seed,
        first_step_only=args.first_step_only, exact_if_possible=not args.no_enumeration,
        max_enumerated=args.max_enumerated, batch_size=args.batch, progress=not args.no_progress)
    report = gradient_report.write_report(records, args.out, command=_gradients_command(args, extra))
    print(gradient_report.markdown_tables(records))
    print(f"wrote {report}, {Path(args.out) / gradient_report.PLOT_FILE} and {Path(args.out) / gradient_report.RECORDS_FILE}")
    return 0


def _gradients_command(args, extra) -> str:
    """The command line that reproduces a gradients run (recorded in its report)."""
    words = ["cocoa gradients", "--env", args.env, *extra,
             *[word for item in args.env_option for word in ("--env-option", item)], "--agents", args.agents, "--policy", args.policy,
             "--samples", str(args.samples), "--max-enumerated", str(args.max_enumerated),
             "--model-updates", str(args.model_updates), "--model-batch", str(args.model_batch),
             "--batch", str(args.batch), "--seed", str(args.seed)]
    words += ["--first-step-only"] * args.first_step_only + ["--no-enumeration"] * args.no_enumeration
    return " ".join([*words, "--out", args.out])


def _list(args, extra) -> int:
    from cocoa import agents, envs
    from cocoa.benchmarks import suites

    if extra:
        raise CliError(f"unexpected arguments for list: {' '.join(extra)}")
    print("environments:")
    for name in envs.names():
        params = ", ".join(f"--{k.replace('_', '-')} {v!r}" for k, v in envs.parameters(name).items())
        print(f"  {name}  {params}")
    print("  gymnasium:<id>  any Gymnasium environment: --env-option horizon=H and its make arguments "
          "(by its P table when it has one, else through the host loop)")
    print(f"two-player games ({envs.TWO_PLAYER_USE}):")
    for name, params in envs.two_player_games().items():
        print(f"  {name}  " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
    print("agents:")
    for name in agents.names():
        own = ", ".join(f"{k}={v!r}" for k, v in agents.estimator_parameters(name).items())
        print(f"  {name}" + (f"  ({own})" if own else ""))
    print("  shared options: " + ", ".join(f"{k}={v!r}" for k, v in agents.agent_parameters().items()))
    print("benchmark suites:")
    for name in suites.names():
        print(f"  {name}: {suites.describe(name)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cocoa", description="Long-term credit assignment in JAX.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(commands)
    bench = commands.add_parser("bench", help="run a benchmark suite and write its report",
                                description="Run a benchmark suite (resumes: finished runs are kept) and "
                                            "write OUT/report.md, plots, results.csv and results.json.")
    bench.add_argument("suite", nargs="?", default="quick", help="suite name (default: quick; see `cocoa list`)")
    bench.add_argument("--out", help="output folder (default: results/SUITE)")
    bench.add_argument("--no-progress", action="store_true", help="hide progress bars")
    bench.add_argument("--backend", default="local", choices=["local", "ray"],
                       help="where the runs execute: this process (default) or tasks on a Ray cluster "
                            "(pip install 'cocoa[ray]')")
    bench.add_argument("--address", help="with --backend ray: the cluster, 'auto' or HOST:PORT "
                                         "(default: start a local Ray instance)")
    bench.add_argument("--cpus-per-run", type=int, default=1,
                       help="with --backend ray: CPUs per run (its XLA threads are pinned to them; default 1)")
    _add_gradients_parser(commands)
    commands.add_parser("list", help="list environments (with parameters), agents and suites")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    handler = {"train": _train, "bench": _bench, "gradients": _gradients, "list": _list}[args.command]
    try:
        return handler(args, extra)
    except (CliError, ValueError, TypeError) as error:
        print(f"cocoa {args.command}: error: {error}", file=sys.stderr)
        return 2
    except FloatingPointError as error:  # cocoa.train.NonFiniteError: NaN or inf during training
        print(f"cocoa {args.command}: training stopped: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"cocoa {args.command}: interrupted; finished runs are kept (re-run to resume)", file=sys.stderr)
        return 130


def console() -> None:
    """The ``cocoa`` command (``main`` with the process's arguments and exit status)."""
    command = sys.argv[1] if len(sys.argv) > 1 else ""

    def leave(signum, frame):
        # Leave from the handler itself rather than raise KeyboardInterrupt: an interrupt raised while
        # XLA compiles was sometimes swallowed (training then ran on), and interpreter teardown with
        # XLA's threads running crashed about one exit in three. Result files are written atomically.
        print(f"cocoa {command}: interrupted; finished runs are kept (re-run to resume)", file=sys.stderr, flush=True)
        sys.stdout.flush()
        if "cocoa.benchmarks.backends" in sys.modules:  # a Ray instance this process started goes too
            sys.modules["cocoa.benchmarks.backends"].stop_started_ray()
        os._exit(130)

    signal.signal(signal.SIGINT, leave)
    sys.exit(main())


if __name__ == "__main__":
    console()
