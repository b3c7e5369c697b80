"""Environments: functional, jittable, with exact tabular forms for the oracle.

Out: :class:`GymnasiumEnv` (every environment is also registered with Gymnasium as
``cocoa/<name>``) and :class:`DmEnvAdapter` (dm_env).
In: :class:`TabularEnv` runs any :class:`~cocoa.types.TabularMDP`; :func:`from_gymnasium` reads a
Gymnasium toy-text environment's table; :func:`wrap_gymnasium` (``make("gymnasium:<id>")``) takes
any Gymnasium environment, by its table or through the host loop (:class:`GymnasiumHostEnv`).
"""

from cocoa.envs.base import Environment
from cocoa.envs.key_to_door import LinearKeyToDoor
from cocoa.envs.tree import Tree
from cocoa.envs.discounting_chain import DiscountingChain
from cocoa.envs.task_interleaving import TaskInterleaving
from cocoa.envs.umbrella_chain import UmbrellaChain
from cocoa.envs.tabular import TabularEnv
from cocoa.envs.gymnasium_source import GymnasiumHostEnv, wrap_gymnasium
from cocoa.envs.registry import (TWO_PLAYER_USE, as_environment, env_class, make, metric_names, names, parameters,
                                 register, two_player_games)
from cocoa.envs.gymnasium_adapter import GymnasiumEnv, register_gymnasium_envs
from cocoa.envs.dm_env_adapter import DmEnvAdapter
from cocoa.envs.from_gymnasium import from_gymnasium

register_gymnasium_envs()

__all__ = ["DiscountingChain", "DmEnvAdapter", "Environment", "GymnasiumEnv", "GymnasiumHostEnv", "LinearKeyToDoor", "TabularEnv", "TaskInterleaving",
           "Tree", "as_environment", "env_class", "from_gymnasium", "make", "metric_names", "names", "parameters", "register",
           "register_gymnasium_envs", "two_player_games", "TWO_PLAYER_USE", "UmbrellaChain", "wrap_gymnasium"]
