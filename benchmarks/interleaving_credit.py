"""Task interleaving's context credit matrix after training: does learned COCOA-reward keep contexts apart?

Run with ``python -m cocoa.benchmarks.interleaving_credit [--updates N] [--seeds S]``. Trains
COCOA-reward on ``TaskInterleaving-v0`` (the defaults), then prints, for one seed's final policy,
the C x C matrix of mean |w - 1| from query steps of context i (rows) to rewarded answers of
context j (columns) with the learned hindsight model, and with the oracle's coefficients at the
same policy (``cocoa.disentangling``). docs/environments/task_interleaving.md shows a run.
"""

from __future__ import annotations

import argparse
import dataclasses

import jax

from cocoa import agents, envs
from cocoa.benchmarks.report import credit_table
from cocoa.disentangling import context_credit_matrix
from cocoa.train import TrainConfig, make_model_training, train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000, help="training updates (default 2000)")
    parser.add_argument("--seeds", type=int, default=4, help="seeds trained (default 4); seed 0 is shown")
    parser.add_argument("--episodes", type=int, default=2000, help="episodes the matrix averages over")
    parser.add_argument("--model-updates", type=int, default=0,
                        help="extra model-only updates at seed 0's final policy before the matrix (default 0)")
    args = parser.parse_args(argv)
    env = envs.make("TaskInterleaving-v0")
    learned = agents.make_for_env("cocoa-reward", env)
    result = train(env, learned, TrainConfig(updates=args.updates, eval_interval=args.updates, seeds=args.seeds))
    state = jax.tree.map(lambda x: x[0], result.final_state)
    final = [row for row in result.rows if row["update"] == args.updates]
    print(f"after {args.updates} updates: exact J per seed "
          + ", ".join(f"{row['exact_return']:.3f}" for row in final)
          + "; correct queries " + ", ".join(f"{row['correct_query_rate']:.2f}" for row in final))
    matrix, count = context_credit_matrix(env, learned, state, episodes=args.episodes)
    print(credit_table("learned COCOA-reward, seed 0:", matrix))
    if args.model_updates:
        train_model = make_model_training(env, learned, TrainConfig(updates=args.model_updates))
        state, _ = train_model(state, jax.random.PRNGKey(1))
        matrix, count = context_credit_matrix(env, learned, state, episodes=args.episodes)
        print(credit_table(f"after {args.model_updates} more model updates at that policy:", matrix))
    exact = agents.make_for_env("cocoa-reward-gt", env)
    exact_state = dataclasses.replace(exact.init(jax.random.PRNGKey(0), env.observation_shape),
                                      policy_params=state.policy_params)
    print(credit_table("oracle coefficients at the same policy:", context_credit_matrix(env, exact, exact_state,
                                                                              episodes=args.episodes)[0]))
    print(f"pairs per cell: {int(count.min())} to {int(count.max())}")


if __name__ == "__main__":
    main()
