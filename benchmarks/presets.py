"""Preset training settings, as agent options for a given environment: the COCOA paper's on
key-to-door, settings tuned here on Gymnasium's FrozenLake.

Meulemans et al., "Would I have gotten that reward? Long-term credit assignment by counterfactual
contribution analysis", NeurIPS 2023, arXiv 2306.16803; values read from its public code's
key-to-door configuration (docs/benchmarks/index.md lists them with their source). ``cocoa train``
and the key-to-door suites start from these; every option given explicitly overrides them.
"""

from __future__ import annotations

# Per estimator: (policy learning rate, model learning rate). HCA-return has no entry in the
# paper's code; it gets the hindsight family's rates.
_KEY_TO_DOOR_LEARNING_RATES = {
    "reinforce": (3e-4, None),
    "advantage": (1e-3, 1e-3),
    "q-critic": (3e-4, 3e-3),
    "trajcv": (3e-3, 1e-2),
    "hca-return": (3e-4, 3e-3),
    "hca-state": (3e-4, 3e-3),
    "cocoa-reward": (3e-4, 3e-3),
    "cocoa-feature": (3e-4, 3e-3),
}
# Shared by every estimator in the paper's code: AdamW (optax's default weight decay), epsilon 0.05.
_KEY_TO_DOOR_SHARED = {"epsilon": 0.05, "weight_decay": 1e-4}


def key_to_door_entropy(length: int) -> float:
    """The paper's entropy bonus for key-to-door, beta = 0.03 (20 / (L - 3))^0.6826 (exponent as in its code)."""
    if length <= 3:
        raise ValueError(f"the entropy schedule needs a length > 3; got {length!r}")
    return 0.03 * (20.0 / (length - 3)) ** 0.68260619448


def paper_agent_config(env_name: str, env_params: dict, agent_name: str) -> dict:
    """The paper's options for ``agent_name`` on ``env_name`` (empty where the paper has none).

    ``-gt`` variants take their base estimator's settings. On key-to-door: the per-estimator policy
    and model learning rates, the length's entropy bonus, epsilon and AdamW's weight decay.
    """
    if env_name != "LinearKeyToDoor-v0":
        return {}
    base = agent_name[: -len("-gt")] if agent_name.endswith("-gt") else agent_name
    if base not in _KEY_TO_DOOR_LEARNING_RATES:
        return {}
    length = int(env_params.get("length", 23))
    if length <= 3:
        return {}
    policy_rate, model_rate = _KEY_TO_DOOR_LEARNING_RATES[base]
    config = {**_KEY_TO_DOOR_SHARED, "learning_rate": policy_rate,
              "entropy_coef": round(key_to_door_entropy(length), 5)}
    if model_rate is not None:
        config["model_learning_rate"] = model_rate
    return config


# Gymnasium's FrozenLake-v1 (4x4, slippery, horizon 100) has no paper settings: these are the best of a
# sweep run here (learning rates x entropy bonus, 8 seeds x 2,000 updates; docs/environments/frozen_lake.md).
_FROZEN_LAKE = {"learning_rate": 3e-3, "entropy_coef": 0.01, "model_learning_rate": 3e-3}


def preset_agent_config(env_name: str, env_params: dict, agent_name: str) -> tuple[dict, str]:
    """The preset options for ``agent_name`` on ``env_name`` and where they come from (empty: none)."""
    paper = paper_agent_config(env_name, env_params, agent_name)
    if paper:
        return paper, "the COCOA paper's settings"
    if env_name == "gymnasium:FrozenLake-v1":
        return dict(_FROZEN_LAKE), "settings tuned here (docs/environments/frozen_lake.md)"
    return {}, ""
