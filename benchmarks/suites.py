"""Benchmark suites: named lists of training runs (env, agent, their options, training budget)."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from cocoa.train import TrainConfig


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run of a suite: ``agent`` on ``env`` with options, for ``train.seeds`` seeds."""

    env: str
    agent: str
    env_params: dict = dataclasses.field(default_factory=dict)
    agent_config: dict = dataclasses.field(default_factory=dict)
    train: TrainConfig = TrainConfig()

    def to_dict(self) -> dict:
        return {"env": self.env, "env_params": dict(self.env_params), "agent": self.agent,
                "agent_config": dict(self.agent_config), "train": dataclasses.asdict(self.train)}

    @property
    def run_id(self) -> str:
        """A readable, unique folder name: agent, env, params and a hash of the full spec."""
        params = "-".join(f"{k}{v}" for k, v in sorted(self.env_params.items()))
        digest = hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:8]
        env = self.env.split("-v")[0]
        return "_".join(part for part in (self.agent, env, params, digest) if part)


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    description: str
    runs: tuple[RunSpec, ...]


def key_to_door_entropy(length: int) -> float:
    """The COCOA paper's entropy bonus for key-to-door, beta = 0.03 (20 / (L - 3))^0.68 (ALGORITHMS.md §5)."""
    return 0.03 * (20.0 / (length - 3)) ** 0.68


# Policy learning rate of the key-to-door suites: at 1e-3 learned COCOA-reward's treasure rate
# oscillated between 0 and 1 from one evaluation to the next (4 seeds, L = 23); at 3e-4 it settled
# (docs/benchmarks/index.md). Every agent of a suite gets the same value.
KEY_TO_DOOR_LEARNING_RATE = 3e-4
# The learned estimators of the COCOA paper's key-to-door figure.
PAPER_AGENTS = ("reinforce", "advantage", "q-critic", "trajcv", "hca-return", "hca-state", "cocoa-reward",
                "cocoa-feature")


def _key_to_door_runs(agents, lengths, train):
    return tuple(
        RunSpec(env="LinearKeyToDoor-v0", agent=agent, env_params={"length": length},
                agent_config={"entropy_coef": round(key_to_door_entropy(length), 5),
                              "learning_rate": KEY_TO_DOOR_LEARNING_RATE},
                train=train)
        for length in lengths for agent in agents)


SUITES: dict[str, Suite] = {
    suite.name: suite for suite in (
        Suite("quick",
              "REINFORCE, Advantage and COCOA-reward on linear key-to-door, L = 23, 4 seeds x 8,000 updates: "
              "a few minutes on a laptop CPU.",
              _key_to_door_runs(("reinforce", "advantage", "cocoa-reward"), (23,),
                                TrainConfig(updates=8000, batch_size=8, seeds=4, eval_interval=500))),
        Suite("smoke",
              "A seconds-long sanity run of the quick suite's agents (used by the tests).",
              _key_to_door_runs(("reinforce", "advantage", "cocoa-reward"), (7,),
                                TrainConfig(updates=40, batch_size=4, seeds=2, eval_interval=20,
                                            eval_episodes=8))),
        Suite("key-to-door-paper",
              "The COCOA paper's key-to-door sweep: 8 estimators x L in {23, 43, 63, 83, 103}, 10,000 updates, "
              "8 seeds (hours on a laptop CPU; HCA-state's all-pairs model dominates at large L).",
              _key_to_door_runs(PAPER_AGENTS, (23, 43, 63, 83, 103),
                                TrainConfig(updates=10000, batch_size=8, seeds=8, eval_interval=500))),
    )
}


def names() -> list[str]:
    return list(SUITES)


def get(name: str) -> Suite:
    if name not in SUITES:
        raise ValueError(f"unknown benchmark suite {name!r}; known suites: {', '.join(SUITES)}")
    return SUITES[name]
