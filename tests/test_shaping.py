"""The co-player shaping runner (cocoa.shaping): plumbing and learning of the naive co-player."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cocoa.shaping import (COOPERATION, METRICS, NAIVE_STARTS_KEY, ShapingConfig, init_params, make_game,
                           make_meta_trajectory, make_meta_update, naive_start, naive_step, step_mean_baseline,
                           train_shaping)

SMALL = dict(episode_length=4, episodes=6, batch_size=8, meta_batch=4)


def test_a_meta_trajectory_has_the_batch_layout_and_repeats_per_key():
    config = ShapingConfig(**SMALL)
    run = jax.jit(make_meta_trajectory(config))
    meta = jnp.zeros((6, 5))
    first, again = (run(meta, jnp.zeros(5), jax.random.PRNGKey(0), meta, True) for _ in range(2))
    assert all(x.shape == (8, 24) for x in first.values())
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])


def test_a_memory_one_meta_agent_plays_as_a_tabular_one_with_the_same_logits_in_every_episode():
    """memory-1 logits (5,) are the tabular policy's (M, 5) with one row repeated: the same games from
    the same key, against a naive learner and against a meta agent; and its pool's params are (P, 5)."""
    logits = jnp.array([1.5, -0.5, 0.3, -2.0, 0.8])
    games = {}
    for policy, params in (("memory-1", logits), ("tabular", jnp.tile(logits, (6, 1)))):
        config = ShapingConfig(**SMALL, policy=policy)
        run = jax.jit(make_meta_trajectory(config))
        games[policy] = [run(params, jnp.zeros(5), jax.random.PRNGKey(4), -params, naive) for naive in (True, False)]
    for memory_one, tabular in zip(games["memory-1"], games["tabular"]):
        for name in tabular:
            np.testing.assert_array_equal(memory_one[name], tabular[name])
    assert init_params(ShapingConfig(**SMALL, policy="memory-1", population=3)).shape == (3, 5)
    # ... and a tabular agent whose rows differ plays differently in the later episodes
    config = ShapingConfig(**SMALL)
    shifted = jnp.tile(logits, (6, 1)).at[3:].add(-5.0)
    late = jax.jit(make_meta_trajectory(config))(shifted, jnp.zeros(5), jax.random.PRNGKey(4), -shifted, False)
    assert not np.array_equal(late["cooperated"][:, 12:], games["tabular"][1]["cooperated"][:, 12:])
    np.testing.assert_array_equal(late["cooperated"][:, :12], games["tabular"][1]["cooperated"][:, :12])


def test_the_co_player_learns_to_defect_against_a_defector_within_the_meta_trajectory():
    """Against an always-defecting meta agent the naive learner's reward per episode rises towards 0
    (it stops being exploited); with a zero learning rate it stays at the uniform policy's -0.5."""
    meta = jnp.full((20, 5), -20.0)
    rewards = {}
    for rate in (1e-9, 5.0):
        config = ShapingConfig(episode_length=10, episodes=20, batch_size=16, naive_learning_rate=rate)
        run = jax.jit(make_meta_trajectory(config))
        naive = jax.vmap(lambda k: run(meta, jnp.zeros(5), k, meta, True)["co_rewards"])(jax.random.split(jax.random.PRNGKey(1), 32))
        rewards[rate] = np.asarray(naive).reshape(32, 16, 20, 10).mean(axis=(0, 1, 3))  # per inner episode
    assert abs(rewards[1e-9].mean() + 0.5) < 0.05
    assert rewards[5.0][-1] > rewards[5.0][0] + 0.3 and rewards[5.0][-1] > -0.2


def test_one_compiled_meta_update_runs_and_is_finite():
    config = ShapingConfig(**SMALL, rule="m-fos")
    update, optimizer = make_meta_update(config)
    logits = init_params(config)
    (logits, _), metrics = update((logits, optimizer.init(logits)), jax.random.PRNGKey(0))
    assert logits.shape == (1, 6, 5)
    assert np.isfinite(np.asarray(logits)).all() and float(jnp.abs(logits).sum()) > 0
    assert set(metrics) == set(METRICS + COOPERATION)
    assert np.isnan(metrics["meta_vs_meta_reward"])  # no meta opponent at p_naive 1


def test_against_a_fixed_meta_opponent_the_co_player_does_not_learn():
    """A meta opponent plays its own logits in every episode: its cooperation per episode stays at its
    policy's, whatever the naive learning rate; and the pool's gradient does not flow into it."""
    config = ShapingConfig(episode_length=5, episodes=8, batch_size=16, naive_learning_rate=50.0)
    run = jax.jit(make_meta_trajectory(config))
    meta = jnp.full((8, 5), -20.0)  # always defect: a naive learner would learn to defect too
    opponent = jnp.full((8, 5), 20.0)  # always cooperate
    games = jax.vmap(lambda k: run(meta, jnp.zeros(5), k, opponent, False))(jax.random.split(jax.random.PRNGKey(2), 8))
    assert bool(jnp.all(games["co_cooperated"])) and not bool(jnp.any(games["cooperated"]))
    np.testing.assert_allclose(games["rewards"], 2.0)  # DC every step
    # A pool of two, meta opponents only: both agents learn from their games (the start logit of the
    # first episode is seen in every game), though each plays only the other.
    config = ShapingConfig(episode_length=2, episodes=3, batch_size=4, meta_batch=4, population=2, p_naive=0.0)
    update, optimizer = make_meta_update(config)
    pool = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 5))
    (new, _), metrics = update((pool, optimizer.init(pool)), jax.random.PRNGKey(5))
    assert np.isnan(metrics["meta_reward"]) and np.isfinite(metrics["meta_vs_meta_reward"])
    assert bool(jnp.all(jnp.abs(new - pool)[:, 0, 0] > 0.04))  # Adam's first step: lr 0.05 in size


def test_the_opponent_type_is_drawn_with_p_naive():
    config = ShapingConfig(episode_length=2, episodes=2, batch_size=2, meta_batch=64, population=3, p_naive=0.75)
    out = train_shaping(config, seeds=[0, 1], updates=4, log_every=2, progress=False)
    assert out["meta_reward"].shape == (2, 2) and out["meta_cooperation"].shape == (2, 2, 2)
    assert out["params"].shape == (2, 3, 2, 5)
    assert np.isfinite(out["meta_vs_meta_reward"]).all()  # both kinds played in every block
    with pytest.raises(ValueError, match="whole number of log_every blocks"):
        train_shaping(config, updates=5, log_every=2, progress=False)


@pytest.mark.parametrize("options, message", [
    (dict(rule="lola"), "unknown rule 'lola'"), (dict(batch_size=0), "batch_size must be an integer >= 1"),
    (dict(naive_learning_rate=-1.0), "naive_learning_rate must be a finite positive number"),
    (dict(meta_learning_rate=float("nan")), "meta_learning_rate must be a finite positive number; got nan"),
    (dict(p_naive=1.5), "p_naive must be a probability in \\[0, 1\\]; got 1.5"),
    (dict(population=0), "population must be an integer >= 1"), (dict(policy="lstm"), "unknown policy .lstm.; known policies: tabular, memory-1, gru, hawk"),
    (dict(naive_baseline="critic"), "unknown naive_baseline .critic.; known baselines: batch-mean, value"),
    (dict(naive_value_learning_rate=2.0), "naive_value_learning_rate must be in \\(0, 1\\]; got 2.0"),
    (dict(naive_inits=-1), "naive_inits must be an integer >= 0; got -1"),
    (dict(naive_inits=10, naive_init_scale=0.0), "naive_init_scale must be a finite positive number; got 0.0"),
    (dict(meta_optimizer="rmsprop"), "unknown meta_optimizer 'rmsprop'; known optimizers: adam, sgd"),
    (dict(policy="gru", naive_policy="network", naive_optimizer="lion"), "unknown naive_optimizer 'lion'; known optimizers"),
    (dict(naive_optimizer="sgd"), "naive_optimizer is for network naive learners; naive_policy is 'memory-1'"),
    (dict(dynamic_naive=True), "dynamic_naive is for network naive learners; naive_policy is 'memory-1'"),
    (dict(dynamic_naive=1), "dynamic_naive must be True or False; got 1"),
    (dict(policy="gru", naive_policy="network", dynamic_naive=True, naive_inits=3), "naive_inits must be 0; got 3"),
    (dict(naive_discount=0.0), "naive_discount must be in \\(0, 1\\]; got 0.0"),
    (dict(meta_max_grad_norm=-1.0), "meta_max_grad_norm must be a finite positive number; got -1.0"),
    (dict(meta_grad_chunks=0), "meta_grad_chunks must be an integer >= 1; got 0"),
    (dict(policy="gru", hawk_heads=2), "hawk_mlp_width and hawk_heads shape the Hawk block, so the policy must be 'hawk'"),
    (dict(policy="hawk", hawk_heads=3), "hawk_heads \\(3\\) must divide hidden_size \\(32\\)"),
    (dict(policy="hawk", hawk_mlp_width=0), "hawk_mlp_width must be an integer >= 1; got 0"),
    (dict(meta_batch=8, meta_minibatches=2, meta_grad_chunks=3),
     "meta_grad_chunks \\(3\\) must divide the co-players of a minibatch \\(meta_batch / meta_minibatches = 4\\)")])
def test_bad_settings_name_themselves(options, message):
    with pytest.raises(ValueError, match=message):
        ShapingConfig(**options)


def test_the_policy_state_starts_once_per_meta_trajectory_and_persists_across_inner_episodes():
    """A policy whose state counts its steps and whose logit is -1 + 0.01 x that count: the logits
    read back from the log-probs run -1, -0.99, ... over the whole meta-trajectory, for both the
    meta agent and a meta opponent, never restarting at an inner episode."""
    from cocoa.shaping import MetaPolicy

    counting = MetaPolicy(init=lambda key: jnp.zeros(()), initial_state=lambda batch: jnp.zeros(batch),
                          apply=lambda params, state, seen, episode: (-1.0 + 0.01 * state + params, state + 1.0))
    config = ShapingConfig(episode_length=3, episodes=4, batch_size=2)
    games = jax.jit(make_meta_trajectory(config, counting))(jnp.zeros(()), jnp.zeros(5), jax.random.PRNGKey(0),
                                                            jnp.zeros(()), False)
    p = np.exp(np.asarray(games["log_probs"], np.float64))
    p = np.where(np.asarray(games["cooperated"]), p, 1 - p)
    np.testing.assert_allclose(np.log(p / (1 - p)), np.broadcast_to(-1 + 0.01 * np.arange(12), (2, 12)), atol=1e-4)


@pytest.mark.parametrize("policy, gru_mlp", [("gru", False), ("gru", True), ("hawk", False)])
def test_a_sequence_meta_update_runs_and_moves_the_policy(policy, gru_mlp):
    config = ShapingConfig(**SMALL, policy=policy, hidden_size=8, gru_mlp=gru_mlp)
    update, optimizer = make_meta_update(config)
    params = init_params(config)
    assert float(jnp.abs(params["policy_head"]["w"]).sum()) == 0.0  # zero readout: P(cooperate) = 1/2
    (params, _), metrics = update((params, optimizer.init(params)), jax.random.PRNGKey(0))
    assert float(jnp.abs(params["policy_head"]["w"]).sum()) > 0
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(params))
    assert np.isfinite(metrics["meta_reward"])



def test_an_a2c_co_player_learns_its_values_and_to_defect_against_a_defector():
    """With the learned value baseline the co-player still learns to defect against a defector."""
    meta = jnp.full((20, 5), -20.0)
    rewards = {}
    for rate in (1e-9, 5.0):
        config = ShapingConfig(episode_length=10, episodes=20, batch_size=16, naive_learning_rate=rate,
                               naive_baseline="value")
        run = jax.jit(make_meta_trajectory(config))
        naive = jax.vmap(lambda k: run(meta, jnp.zeros(5), k, meta, True)["co_rewards"])(jax.random.split(jax.random.PRNGKey(1), 32))
        rewards[rate] = np.asarray(naive).reshape(32, 16, 20, 10).mean(axis=(0, 1, 3))
    assert abs(rewards[1e-9].mean() + 0.5) < 0.05
    assert rewards[5.0][-1] > rewards[5.0][0] + 0.3 and rewards[5.0][-1] > -0.2


def test_the_a2c_values_move_to_the_mean_returns_and_baseline_the_step_with_their_old_values():
    """Fed the same games each episode, every seen observation's value converges to the mean scaled
    return seen from it; the policy step is REINFORCE with the old values subtracted."""
    config = ShapingConfig(naive_baseline="value", naive_value_learning_rate=0.5, naive_learning_rate=1.0)
    rng = np.random.default_rng(0)
    seen = jnp.asarray(rng.integers(0, 5, (16, 10)))
    cooperated = jnp.asarray(rng.random((16, 10)) < 0.5)
    rewards = jnp.asarray(rng.choice([-1.0, 0.0, 1.0, 2.0], (16, 10)))
    returns = np.cumsum(np.asarray(rewards)[:, ::-1], axis=1)[:, ::-1] * config.reward_scale
    target = np.array([returns[np.asarray(seen) == o].mean() for o in range(5)])
    values = jnp.zeros(5)
    for _ in range(40):
        logits, values = naive_step(config, jnp.zeros(5), values, seen, cooperated, rewards)
    np.testing.assert_allclose(values, target, atol=1e-5)
    logits, _ = naive_step(config, jnp.zeros(5), values, seen, cooperated, rewards)
    score = np.where(np.asarray(cooperated), 0.5, -0.5)  # d log sigmoid(+-x) / dx at x = 0
    advantages = returns - target[np.asarray(seen)]
    expected = np.zeros(5)
    np.add.at(expected, np.asarray(seen), score * advantages / 16)
    np.testing.assert_allclose(logits, expected, atol=1e-6)
    batch_mean = ShapingConfig()
    assert naive_step(batch_mean, jnp.zeros(5), values, seen, cooperated, rewards)[1] is values


# --- the step-mean baseline of the Monte-Carlo weights ----------------------------------------------

def test_the_step_mean_baseline_is_the_mean_over_the_other_co_players_of_the_same_type():
    """Against an explicit loop: each weight less the mean at its step over every game of the same
    opponent type outside its own co-player's B games (0 where there is none)."""
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(2, 3, 2, 4))  # (P, K, B, L)
    naive = np.array([[True, False, True], [True, True, False]])[:, :, None, None]
    got = np.asarray(step_mean_baseline(jnp.asarray(weights), jnp.asarray(naive)))
    expected = np.empty_like(weights)
    for p in range(2):
        for k in range(3):
            others = [weights[q, j] for q in range(2) for j in range(3)
                      if (q, j) != (p, k) and naive[q, j, 0, 0] == naive[p, k, 0, 0]]
            expected[p, k] = weights[p, k] - np.mean(np.concatenate(others), axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="needs weights \\(P, K, B, L\\) and a mask \\(P, K, 1, 1\\); got weights "
                       "\\(2, 3, 2, 4\\) and mask \\(2, 3\\)"):
        step_mean_baseline(jnp.asarray(weights), jnp.asarray(naive[:, :, 0, 0]))
    one_co_player = weights[:1, :1]  # nobody else: no baseline
    np.testing.assert_allclose(step_mean_baseline(jnp.asarray(one_co_player), jnp.ones((1, 1, 1, 1), bool)),
                               one_co_player, rtol=1e-6)


def _baseline_shift_z(monkeypatch, baseline=None, samples=3000):
    """z-scores of the mean gradient change that the step-mean baseline makes, paired by key, over the
    logits that games reach. ``baseline`` replaces ``step_mean_baseline`` (a deliberately biased one)."""
    import cocoa.shaping as shaping

    if baseline is not None:
        monkeypatch.setattr(shaping, "step_mean_baseline", baseline)
    common = dict(episode_length=2, episodes=3, batch_size=2, meta_batch=2, naive_learning_rate=5.0)
    plain, based = (jax.vmap(shaping.make_meta_gradient(ShapingConfig(**common, meta_baseline=b)), (None, 0))
                    for b in ("none", "step-mean"))
    logits = 0.5 * jax.random.normal(jax.random.PRNGKey(3), (1, 3, 5))
    keys = jax.random.split(jax.random.PRNGKey(4), samples)
    change = np.asarray(jax.jit(lambda k: based(logits, k)[0] - plain(logits, k)[0])(keys), np.float64)
    mean, se = change.mean(0), change.std(0, ddof=1) / np.sqrt(samples)
    reached = se > 0
    assert reached.sum() >= 6 and np.all(mean[~reached] == 0)
    return np.abs(mean[reached] / se[reached])


def test_the_step_mean_baseline_leaves_the_gradient_unbiased(monkeypatch):
    """Paired by key, the baseline's change of the gradient has mean 0 on every reached logit (z < 4);
    the same baseline taken over every co-player, the own one included, is rejected (some z > 6)."""
    assert _baseline_shift_z(monkeypatch).max() < 4.0

    def with_own_games(weights, mask):  # the step mean over every co-player, its own B games included
        return weights - jnp.mean(weights, axis=(0, 1, 2), keepdims=True)

    assert _baseline_shift_z(monkeypatch, with_own_games).max() > 6.0


def test_the_gru_mlp_sits_after_the_gru_and_only_there():
    """``gru_mlp`` adds the Hawk block's gated MLP (width 3 x 8) after the GRU and nothing else; other
    policies refuse it, naming the policy."""
    plain, with_mlp = (init_params(ShapingConfig(**SMALL, policy="gru", hidden_size=8, gru_mlp=m)) for m in (False, True))
    assert set(with_mlp) - set(plain) == {"mlp_norm", "mlp_gate", "mlp_in", "mlp_out"}
    assert with_mlp["mlp_in"]["w"].shape[-2:] == (8, 24) and with_mlp["mlp_out"]["w"].shape[-2:] == (24, 8)
    for policy in ("hawk", "tabular"):
        with pytest.raises(ValueError, match=f"the policy must be 'gru'; got '{policy}'"):
            ShapingConfig(policy=policy, gru_mlp=True)
    with pytest.raises(ValueError, match="gru_mlp must be True or False; got 1"):
        ShapingConfig(policy="gru", gru_mlp=1)


def test_the_step_mean_baseline_is_refused_with_a_critic():
    with pytest.raises(ValueError, match="unknown meta_baseline 'critic'; known meta baselines: none, step-mean"):
        ShapingConfig(meta_baseline="critic")
    with pytest.raises(ValueError, match="with meta_critic the critic's values are the baseline"):
        ShapingConfig(policy="gru", naive_policy="network", meta_critic=True, meta_baseline="step-mean")


# --- the replay of the meta policy, and PPO --------------------------------------------------------

@pytest.mark.parametrize("options", [
    dict(), dict(policy="memory-1"), dict(policy="gru", hidden_size=8), dict(policy="hawk", hidden_size=8),
    dict(policy="gru", hidden_size=8, gru_mlp=True),
    dict(policy="gru", hidden_size=8, naive_policy="network"),
    dict(env="CleanUpLite-v0", episode_length=6, policy="hawk", hidden_size=8)], ids=str)
def test_the_replay_under_the_playing_params_gives_the_games_log_probs(options):
    """Tabular, memory-1, GRU and Hawk meta agents on the IPD, network games on the IPD and CleanUp-lite: the
    meta policy run again over what it saw gives back the games' log-probs (and values), so PPO's
    ratio starts at 1."""
    from cocoa.shaping import make_game, make_replay

    config = ShapingConfig(**{**dict(episode_length=3, episodes=3, batch_size=2), **options})
    params = jax.tree.map(lambda x: x[0], init_params(config, jax.random.PRNGKey(1)))
    params = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(jax.random.PRNGKey(2), x.shape), params)
    opponent = jax.tree.map(lambda x: -x, params)
    for is_naive in (True, False):
        games = jax.jit(make_game(config))(params, jax.random.PRNGKey(3), opponent, is_naive)
        log_probs, values = jax.jit(make_replay(config))(params, games)
        np.testing.assert_allclose(log_probs, games["log_probs"], rtol=1e-5, atol=1e-5)
        assert float(jnp.std(games["log_probs"])) > 0.01
        if config.naive_policy == "network":
            np.testing.assert_allclose(values, games["values"], rtol=1e-5, atol=1e-5)
        else:
            assert values is None


def test_the_clipped_surrogate_drops_the_scores_whose_ratio_left_the_clip_range():
    """Away from the collecting params the surrogate's gradient is sum W grad r over exactly the
    scores not clipped: those with W > 0 and r > 1 + clip, or W < 0 and r < 1 - clip, give none."""
    from cocoa.shaping import _meta_batch, make_replay

    config = ShapingConfig(episode_length=3, episodes=4, batch_size=4, meta_batch=2, meta_clip=0.1)
    collect, loss = _meta_batch(config)
    params = init_params(config)
    batch, _ = collect(params, jax.random.PRNGKey(0))
    moved = params + 0.4 * jax.random.normal(jax.random.PRNGKey(1), params.shape)
    replay = jax.vmap(jax.vmap(make_replay(config), (None, 0)))
    ratio = lambda p: jnp.exp(replay(p, batch)[0] - batch["log_probs"])
    r, w = ratio(moved), batch["weights"]
    kept = ~(((w > 0) & (r > 1.1)) | ((w < 0) & (r < 0.9)))
    assert 0.2 < float(jnp.mean(kept)) < 0.95  # both kinds present
    by_hand = jax.grad(lambda p: -jnp.sum(jnp.mean(jnp.sum(jnp.where(kept, ratio(p) * w, 0.0), axis=(2, 3)), axis=1)))
    np.testing.assert_allclose(jax.grad(loss)(moved, batch), by_hand(moved), rtol=1e-4, atol=1e-5)


def test_ppo_takes_epochs_times_minibatches_steps_and_one_pass_is_the_plain_step():
    from cocoa.shaping import make_meta_gradient

    common = dict(episode_length=3, episodes=4, batch_size=4, meta_batch=4, population=2, p_naive=0.5)
    params = init_params(ShapingConfig(**common), jax.random.PRNGKey(0)) + 0.1
    key = jax.random.PRNGKey(7)
    update, optimizer = make_meta_update(ShapingConfig(**common, meta_epochs=3, meta_minibatches=2))
    (new, state), metrics = update((params, optimizer.init(params)), key)
    assert int(state[0].count) == 6 and np.isfinite(np.asarray(new)).all()
    # One pass in one minibatch: one Adam step along make_meta_gradient's estimate of the same games.
    config = ShapingConfig(**common)
    update, optimizer = make_meta_update(config)
    (one, _), _ = update((params, optimizer.init(params)), key)
    gradient, _ = jax.jit(make_meta_gradient(config))(params, key)
    step, _ = optimizer.update(gradient, optimizer.init(params), params)
    np.testing.assert_allclose(one, params + step, rtol=1e-6, atol=1e-6)
    assert float(jnp.max(jnp.abs(new - params))) > float(jnp.max(jnp.abs(one - params)))


def test_the_sgd_meta_update_is_one_plain_step_down_the_meta_gradient():
    from cocoa.shaping import make_meta_gradient

    config = ShapingConfig(episode_length=3, episodes=4, batch_size=4, meta_batch=4, population=2, p_naive=0.5,
                           meta_optimizer="sgd", meta_learning_rate=0.3)
    params = init_params(config, jax.random.PRNGKey(0)) + 0.1
    key = jax.random.PRNGKey(7)
    update, optimizer = make_meta_update(config)
    (new, _), _ = update((params, optimizer.init(params)), key)
    gradient, _ = jax.jit(make_meta_gradient(config))(params, key)
    assert float(jnp.max(jnp.abs(gradient))) > 0
    np.testing.assert_allclose(new, params - 0.3 * gradient, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options, message", [
    (dict(meta_batch=6, meta_minibatches=4), "meta_minibatches \\(4\\) must divide meta_batch \\(6\\)"),
    (dict(meta_epochs=0), "meta_epochs must be an integer >= 1"),
    (dict(meta_clip=0.0), "meta_clip must be a finite positive number; got 0.0")])
def test_bad_ppo_settings_name_themselves(options, message):
    with pytest.raises(ValueError, match=message):
        ShapingConfig(**options)


def test_fixed_naive_starts_are_drawn_once_and_picked_per_game():
    """naive_inits K: every start is one of K rows, the same for any seed, scaled by naive_init_scale,
    and every row is picked; 0: the memory-1 learner starts at logits 0."""
    keys = jax.random.split(jax.random.PRNGKey(3), 300)
    zero = jax.vmap(naive_start(ShapingConfig()))(keys)
    np.testing.assert_array_equal(zero, 0.0)
    starts = np.asarray(jax.vmap(naive_start(ShapingConfig(naive_inits=3)))(keys))
    rows = np.unique(starts, axis=0)
    np.testing.assert_allclose(rows, np.unique(np.asarray(jax.random.normal(NAIVE_STARTS_KEY, (3, 5))), axis=0))
    scaled = np.asarray(jax.vmap(naive_start(ShapingConfig(naive_inits=3, naive_init_scale=2.0)))(keys))
    np.testing.assert_allclose(scaled, 2.0 * starts, rtol=1e-6)
    # Network learners: K fixed parameter sets.
    network = ShapingConfig(policy="gru", naive_policy="network", naive_inits=2, hidden_size=4)
    params = jax.vmap(naive_start(network))(keys[:40])
    flat = np.concatenate([np.asarray(leaf).reshape(40, -1) for leaf in jax.tree.leaves(params)], axis=1)
    assert len(np.unique(flat, axis=0)) == 2


def test_a_game_s_naive_learner_plays_the_start_it_drew():
    """With a learning rate of ~0 the naive learner plays its start all along: its cooperation at the
    start observation, per game, is the sigmoid of one of the two starts' first logit (0.10 or 0.37
    at scale 3), and games draw both."""
    config = ShapingConfig(episode_length=1, episodes=50, batch_size=16, naive_inits=2, naive_init_scale=3.0,
                           naive_learning_rate=1e-9)
    expected = np.asarray(jax.nn.sigmoid(3.0 * jax.random.normal(NAIVE_STARTS_KEY, (2, 5))[:, 0]))
    meta = jnp.zeros((50, 5))
    games = jax.vmap(lambda k: jax.jit(make_game(config))(meta, k, meta, True))(jax.random.split(jax.random.PRNGKey(4), 24))
    rates = np.asarray(games["co_cooperated"]).mean(axis=(1, 2))  # T = 1: every step is the start observation
    nearest = np.argmin(np.abs(rates[:, None] - expected[None]), axis=1)
    np.testing.assert_array_less(np.abs(rates - expected[nearest]), 0.06)  # s.e. <= 0.017 over 800 plays
    assert set(nearest.tolist()) == {0, 1}


def test_the_gradient_summed_over_chunks_of_co_players_is_the_whole_minibatch_s():
    common = dict(policy="gru", hidden_size=4, episode_length=3, episodes=2, batch_size=2, meta_batch=8,
                  population=2, p_naive=0.5, meta_epochs=2, meta_minibatches=2)
    params = init_params(ShapingConfig(**common), jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(7)
    results = []
    for chunks in (1, 2, 4):
        update, optimizer = make_meta_update(ShapingConfig(**common, meta_grad_chunks=chunks, meta_optimizer="sgd"))
        results.append(update((params, optimizer.init(params)), key)[0][0])
    moved = [float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(params))]
    assert max(moved) > 1e-3
    for chunked in results[1:]:
        for a, b in zip(jax.tree.leaves(chunked), jax.tree.leaves(results[0])):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_each_meta_agent_s_gradient_is_clipped_to_the_max_norm_on_its_own():
    from cocoa.shaping import clip_per_agent

    gradient = {"a": jnp.array([[3.0, 0.0], [0.3, 0.0], [0.0, 0.0]]), "b": jnp.array([[[4.0]], [[0.4]], [[0.0]]])}
    clipped, _ = clip_per_agent(1.0).update(gradient, optax.EmptyState())
    np.testing.assert_allclose(clipped["a"][:, 0], [0.6, 0.3, 0.0], rtol=1e-6)  # agent 0: norm 5 -> 1
    np.testing.assert_allclose(clipped["b"][:, 0, 0], [0.8, 0.4, 0.0], rtol=1e-6)  # agent 1 (norm 0.5) untouched
    with pytest.raises(ValueError, match="max_norm must be a finite positive number; got 0.0"):
        clip_per_agent(0.0)
    # In the update: an SGD step of learning rate 1 moves each agent by at most the max norm.
    config = ShapingConfig(episode_length=3, episodes=4, batch_size=4, meta_batch=4, population=2, p_naive=0.5,
                           meta_optimizer="sgd", meta_learning_rate=1.0, meta_max_grad_norm=1e-3)
    params = init_params(config, jax.random.PRNGKey(0)) + 0.1
    update, optimizer = make_meta_update(config)
    (new, _), _ = update((params, optimizer.init(params)), jax.random.PRNGKey(7))
    norms = np.sqrt(np.sum(np.asarray(new - params).reshape(2, -1) ** 2, axis=1))
    np.testing.assert_allclose(norms, 1e-3, rtol=1e-4)


def test_a_dynamic_naive_learner_starts_as_the_meta_agent_it_copies():
    """On the IPD with network players: an opponent whose policy head always defects, copied by a dynamic
    naive learner (learning rate ~0), defects in every game; a fresh naive learner (zero heads) cooperates
    about half the time."""
    common = dict(policy="gru", naive_policy="network", hidden_size=4, episode_length=3, episodes=2, batch_size=64,
                  naive_learning_rate=1e-9)
    meta = init_params(ShapingConfig(**common), jax.random.PRNGKey(0))
    meta = jax.tree.map(lambda x: x[0], meta)
    defector = dict(meta, policy_head=dict(meta["policy_head"], b=jnp.array([-30.0, 30.0])))  # (cooperate, defect)
    key = jax.random.PRNGKey(1)
    copied = jax.jit(make_game(ShapingConfig(**common, dynamic_naive=True)))(meta, key, defector, True)
    fresh = jax.jit(make_game(ShapingConfig(**common)))(meta, key, defector, True)
    assert not np.asarray(copied["co_cooperated"]).any()
    assert 0.35 < float(np.mean(fresh["co_cooperated"])) < 0.65  # 384 plays of a uniform policy
    # In the update, a naive slot's copied agent is any of the pool's, itself included.
    update, optimizer = make_meta_update(ShapingConfig(**common, dynamic_naive=True, population=3, meta_batch=4,
                                                        p_naive=0.5))
    params = init_params(ShapingConfig(**common, population=3), jax.random.PRNGKey(0))
    (new, _), metrics = update((params, optimizer.init(params)), key)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(new))
    assert np.isfinite(metrics["meta_reward"]) and np.isfinite(metrics["meta_vs_meta_reward"])
