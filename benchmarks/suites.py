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


def _key_to_door_runs(agents, lengths, train):
    return tuple(
        RunSpec(env="LinearKeyToDoor-v0", agent=agent, env_params={"length": length},
                agent_config={"entropy_coef": round(key_to_door_entropy(length), 5)}, train=train)
        for length in lengths for agent in agents)


SUITES: dict[str, Suite] = {
    suite.name: suite for suite in (
        Suite("quick",
              "REINFORCE and Advantage on linear key-to-door, L = 23: a few minutes on a laptop CPU.",
              _key_to_door_runs(("reinforce", "advantage"), (23,),
                                TrainConfig(updates=5000, batch_size=8, seeds=5, eval_interval=250))),
        Suite("smoke",
              "A seconds-long sanity run of the quick suite's agents (used by the tests).",
              _key_to_door_runs(("reinforce", "advantage"), (7,),
                                TrainConfig(updates=40, batch_size=4, seeds=2, eval_interval=20,
                                            eval_episodes=8))),
        Suite("key-to-door-lengths",
              "REINFORCE and Advantage on key-to-door for L in {23, 43, 63, 83, 103} (the paper's sweep), "
              "10,000 updates, 8 seeds.",
              _key_to_door_runs(("reinforce", "advantage"), (23, 43, 63, 83, 103),
                                TrainConfig(updates=10000, batch_size=8, seeds=8, eval_interval=500))),
    )
}


def names() -> list[str]:
    return list(SUITES)


def get(name: str) -> Suite:
    if name not in SUITES:
        raise ValueError(f"unknown benchmark suite {name!r}; known suites: {', '.join(SUITES)}")
    return SUITES[name]
