"""Benchmark suites: named lists of training runs (env, agent, their options, training budget)."""

from __future__ import annotations

import dataclasses

from cocoa.benchmarks import coala, presets, records, tree_variance
from cocoa.train import TrainConfig


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run of a suite: ``agent`` on ``env`` with options, for ``train.seeds`` seeds."""

    env: str
    agent: str
    env_params: dict = dataclasses.field(default_factory=dict)
    agent_config: dict = dataclasses.field(default_factory=dict)
    train: TrainConfig = TrainConfig()
    label: str = ""  # how the report names the run (default: the agent and the env params)
    # {update: env params changed from that update on}, e.g. key-to-door's reward switch.
    env_changes: dict = dataclasses.field(default_factory=dict)
    # Shadow estimators: each trains its model on the run's batches and is measured against the
    # oracle at every evaluation (``cocoa.shadow``), on ``shadow_samples`` trajectories.
    shadows: tuple = ()
    shadow_samples: int = 256
    shadow_first_step_only: bool = False
    # Task interleaving: after training, seed 0's context credit matrix with the agent's own
    # coefficients and with the oracle's at the same policy (``cocoa.disentangling``).
    credit_matrix: bool = False

    def to_dict(self) -> dict:
        spec = {"env": self.env, "env_params": dict(self.env_params), "agent": self.agent,
                "agent_config": dict(self.agent_config), "train": dataclasses.asdict(self.train)}
        # Only when set, so that the ids of runs without them stay as they were.
        if self.env_changes:
            spec["env_changes"] = {str(update): dict(params) for update, params in sorted(self.env_changes.items())}
        if self.credit_matrix:
            spec["credit_matrix"] = True
        if self.shadows:
            spec["shadows"] = {"agents": list(self.shadows), "samples": self.shadow_samples,
                               "first_step_only": self.shadow_first_step_only}
        return {**spec, "label": self.label} if self.label else spec

    @property
    def run_id(self) -> str:
        """A readable, unique folder name: agent, env, params and a hash of the full spec."""
        params = "-".join(f"{k}{v}" for k, v in sorted(self.env_params.items()))
        digest = records.digest(self.to_dict())
        env = self.env.split("-v")[0].replace(":", "-")  # "gymnasium:CartPole" -> "gymnasium-CartPole"
        return "_".join(part for part in (self.agent, env, params, digest) if part)


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    description: str
    runs: tuple[RunSpec, ...]


# The learned estimators of the COCOA paper's key-to-door figure, cheapest first (HCA-state's
# all-pairs model is by far the slowest), so that an interrupted sweep has whole lines.
PAPER_AGENTS = ("reinforce", "advantage", "cocoa-reward", "q-critic", "trajcv", "hca-return", "cocoa-feature",
                "hca-state")
PAPER_LENGTHS = (23, 43, 63, 83, 103)


def _key_to_door_runs(agents, lengths, train, **overrides):
    """Runs with the paper's settings for each agent and length (``presets``), then ``overrides``."""
    return tuple(
        RunSpec(env="LinearKeyToDoor-v0", agent=agent, env_params={"length": length},
                agent_config={**presets.paper_agent_config("LinearKeyToDoor-v0", {"length": length}, agent),
                              **overrides},
                train=train)
        for agent in agents for length in lengths)


# cocoa's hindsight model and update before it took the paper code's (the ablation's starting point).
EARLIER_COCOA = {"policy_features": "none", "relu_difference": False, "model_init": "zero",
                 "model_first": False, "model_batch": "batch", "weight_decay": 0.0}
# What the paper's code does, one switch per difference (docs/benchmarks/hindsight_ablation.md).
PAPER_CODE = {"policy_features": "gate", "relu_difference": True, "model_init": "default",
              "model_first": True, "model_batch": "resample", "weight_decay": 1e-4}
_NETWORK = {"policy_features": "gate", "relu_difference": True}
_DIFFERENCES = {  # label: the switches of one difference between the two
    "network": _NETWORK, "init": {"model_init": "default"}, "order": {"model_first": True},
    "resample": {"model_batch": "resample"}, "adamw": {"weight_decay": 1e-4}}
_PARTS = {  # label: one part of the paper's code undone
    "gate as input": {"policy_features": "input"}, "no policy features": {"policy_features": "none"},
    "no relu difference": {"relu_difference": False}, "zero init": {"model_init": "zero"},
    "credit first": {"model_first": False}, "same batch": {"model_batch": "batch"},
    "adam": {"weight_decay": 0.0}}


def hindsight_ablation_variants() -> dict[str, dict]:
    """label -> cocoa-reward's switches: earlier cocoa, + each difference alone, the paper's code, - each part."""
    variants = {"earlier cocoa": EARLIER_COCOA}
    variants.update({f"earlier + {label}": {**EARLIER_COCOA, **change} for label, change in _DIFFERENCES.items()})
    variants["earlier + network + init"] = {**EARLIER_COCOA, **_NETWORK, "model_init": "default"}
    variants["paper code"] = PAPER_CODE
    variants.update({f"paper - {label}": {**PAPER_CODE, **change} for label, change in _PARTS.items()})
    return variants


def _ablation_runs(length, train):
    paper = presets.paper_agent_config("LinearKeyToDoor-v0", {"length": length}, "cocoa-reward")
    return tuple(RunSpec(env="LinearKeyToDoor-v0", agent="cocoa-reward", env_params={"length": length},
                         agent_config={**paper, **switches}, train=train, label=label)
                 for label, switches in hindsight_ablation_variants().items())


# The key-to-door runs of ``cocoa bench claims`` (cocoa.benchmarks.claims): COCOA-reward at L = 23 for
# its early learning; REINFORCE, Advantage and COCOA-reward at L = 103 for the long distance, and
# REINFORCE and Advantage at L = 23 too, for the drop with the distance of the "falls off" rows.
_CLAIMS_KEY_TO_DOOR = (
    _key_to_door_runs(("cocoa-reward",), (23,), TrainConfig(updates=2000, batch_size=8, seeds=8, eval_interval=250))
    + _key_to_door_runs(("reinforce", "advantage"), (23,),
                        TrainConfig(updates=10000, batch_size=8, seeds=8, eval_interval=500))
    + _key_to_door_runs(("reinforce", "advantage", "cocoa-reward"), (103,),
                        TrainConfig(updates=10000, batch_size=8, seeds=8, eval_interval=500)))

_BASELINES_AND_COCOA = ("reinforce", "advantage", "cocoa-reward")


def _runs(env, agents, env_params, train, **fields):
    return tuple(RunSpec(env=env, agent=agent, env_params=dict(env_params), train=train, **fields) for agent in agents)


def _variant_runs(env_params, train, **fields):
    """Key-to-door runs of REINFORCE, Advantage and COCOA-reward with the paper's settings at these params."""
    return tuple(RunSpec(env="LinearKeyToDoor-v0", agent=agent, env_params=dict(env_params),
                         agent_config=presets.paper_agent_config("LinearKeyToDoor-v0", env_params, agent),
                         train=train, **fields) for agent in _BASELINES_AND_COCOA)


def _shadow_run(shadows, seeds, seed=0, label=""):
    """Shadow training at L = 103: Q-critic with the exact Q drives the policy, ``shadows`` are
    measured on the key decision's term at every evaluation."""
    return RunSpec(env="LinearKeyToDoor-v0", agent="q-critic-gt", env_params={"length": 103},
                   agent_config=presets.paper_agent_config("LinearKeyToDoor-v0", {"length": 103}, "q-critic"),
                   train=TrainConfig(updates=10000, batch_size=8, seeds=seeds, eval_interval=500, seed=seed),
                   shadows=tuple(shadows), shadow_first_step_only=True, label=label)


_SHORT = TrainConfig(updates=2000, batch_size=8, seeds=4, eval_interval=250)

SUITES: dict[str, Suite] = {
    suite.name: suite for suite in (
        Suite("quick",
              "REINFORCE, Advantage and COCOA-reward on linear key-to-door, L = 43, with the paper's settings, "
              "4 seeds x 4,000 updates: a few minutes on a laptop CPU.",
              _key_to_door_runs(("reinforce", "advantage", "cocoa-reward"), (43,),
                                TrainConfig(updates=4000, batch_size=8, seeds=4, eval_interval=250))),
        Suite("smoke",
              "A seconds-long sanity run of the quick suite's agents (used by the tests).",
              _key_to_door_runs(("reinforce", "advantage", "cocoa-reward"), (7,),
                                TrainConfig(updates=40, batch_size=4, seeds=2, eval_interval=20,
                                            eval_episodes=8))),
        Suite("hindsight-ablation",
              "Which parts of the COCOA paper's hindsight model and update make learned COCOA-reward hold the "
              "treasure: 15 variants on key-to-door L = 43, 8 seeds x 10,000 updates (about 20 minutes here).",
              _ablation_runs(43, TrainConfig(updates=10000, batch_size=8, seeds=8, eval_interval=250,
                                             eval_episodes=128))),
        Suite("claims-key-to-door",
              "The key-to-door runs behind `cocoa bench claims`: COCOA-reward at L = 23 (2,000 updates), REINFORCE "
              "and Advantage at L = 23 and, with COCOA-reward, at L = 103 (10,000 updates), 8 seeds each (13 min 44 s "
              "here while two other training jobs shared the 2 cores; about 3 minutes alone before the two L = 23 "
              "runs were added).",
              _CLAIMS_KEY_TO_DOOR),
        Suite("task-interleaving",
              "REINFORCE, Advantage and COCOA-reward on task interleaving (5 contexts, 3 open at a time), "
              "4 seeds x 2,000 updates, and COCOA-reward's context credit matrix, learned and exact.",
              _runs("TaskInterleaving-v0", ("reinforce", "advantage"), {}, _SHORT)
              + _runs("TaskInterleaving-v0", ("cocoa-reward",), {}, _SHORT, credit_matrix=True)),
        Suite("reward-switch",
              "Key-to-door L = 43 with the door opening with the key; the treasure's reward turns to -0.2 at "
              "update 2,000 of 4,000: who unlearns the key. REINFORCE, Advantage, COCOA-reward, 4 seeds.",
              _variant_runs({"length": 43, "door_opens_with_key": True},
                            TrainConfig(updates=4000, batch_size=8, seeds=4, eval_interval=250),
                            env_changes={2000: {"treasure_reward": -0.2}})),
        Suite("reward-aliasing",
              "Key-to-door L = 43 with the treasure worth what a small apple is (0.1 x 23/L): a reward-keyed "
              "model cannot tell them apart. REINFORCE, Advantage, COCOA-reward, 4 seeds x 4,000 updates.",
              _variant_runs({"length": 43, "treasure_reward": 0.1},
                            TrainConfig(updates=4000, batch_size=8, seeds=4, eval_interval=250))),
        Suite("bsuite-chains",
              "bsuite's umbrella chain (L = 20) and discounting chain: REINFORCE, Advantage and COCOA-reward, "
              "4 seeds x 2,000 updates.",
              _runs("UmbrellaChain-v0", _BASELINES_AND_COCOA, {"length": 20}, _SHORT)
              + _runs("DiscountingChain-v0", _BASELINES_AND_COCOA, {}, _SHORT)),
        Suite("gymnasium",
              "Gymnasium environments nobody here wrote: FrozenLake-v1 through its P table (jitted) and CartPole-v1 "
              "through the host loop, REINFORCE and Advantage, 2 seeds x 200 updates.",
              _runs("gymnasium:FrozenLake-v1", ("reinforce", "advantage"), {"horizon": 50},
                    TrainConfig(updates=200, batch_size=8, seeds=2, eval_interval=50))
              + _runs("gymnasium:CartPole-v1", ("reinforce", "advantage"), {"horizon": 200},
                      TrainConfig(updates=200, batch_size=8, seeds=2, eval_interval=50))),
        Suite("shadow-key-to-door",
              "Shadow training at L = 103 (the COCOA paper's gradient-quality figure): the policy driven by "
              "Q-critic with the exact Q; REINFORCE, Advantage, Q-critic and COCOA-reward measured against the "
              "oracle on the key decision at every evaluation, 16 seeds x 10,000 updates (10 min 25 s here on 2 "
              "cores); HCA-state with them in a second run, 4 seeds x 10,000 updates (1 h 27 min: its all-pairs "
              "hindsight model is most of the cost).",
              (_shadow_run(("reinforce", "advantage", "q-critic", "cocoa-reward"), seeds=16, seed=100,
                           label="q-critic-gt (L=103), 16 seeds"),
               _shadow_run(("reinforce", "advantage", "q-critic", "hca-state", "cocoa-reward"), seeds=4))),
        Suite("key-to-door-paper",
              "The COCOA paper's key-to-door sweep: 8 estimators x L in {23, 43, 63, 83, 103}, 10,000 updates, "
              "8 seeds (hours on a laptop CPU; HCA-state's all-pairs model dominates, hours per run beyond L = 23).",
              _key_to_door_runs(PAPER_AGENTS, (23, 43, 63, 83, 103),
                                TrainConfig(updates=10000, batch_size=8, seeds=8, eval_interval=500))),
    )
}


CLAIMS = "claims"
CLAIMS_DESCRIPTION = ("Every claim of the COCOA and COALA papers that runs here, checked in one report "
                      "(claims.md, claims.json): the claims-key-to-door runs, the tree's exact variance against "
                      "overlap and the coala suite (12 to 14 minutes alone here, 31 beside two other jobs).")


def names() -> list[str]:
    """Every suite ``cocoa bench`` runs: the training suites, the multi-agent one and the claims."""
    return list(SUITES) + [tree_variance.NAME, *coala.SUITES, CLAIMS]


def describe(name: str) -> str:
    special = {tree_variance.NAME: tree_variance.DESCRIPTION, CLAIMS: CLAIMS_DESCRIPTION,
               **{suite: description for suite, (_, description) in coala.SUITES.items()}}
    return special[name] if name in special else get(name).description


def get(name: str) -> Suite:
    if name not in SUITES:
        raise ValueError(f"unknown benchmark suite {name!r}; known suites: {', '.join(names())}")
    return SUITES[name]
