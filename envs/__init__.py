"""Environments: functional, jittable, with exact tabular forms for the oracle.

Adapters: :class:`GymnasiumEnv` (every environment is also registered with Gymnasium as
``cocoa/<name>``), :class:`DmEnvAdapter` (dm_env), and :func:`from_gymnasium`, which turns a
Gymnasium toy-text environment into a :class:`~cocoa.types.TabularMDP`.
"""

from cocoa.envs.base import Environment
from cocoa.envs.key_to_door import LinearKeyToDoor
from cocoa.envs.tree import Tree
from cocoa.envs.registry import env_class, make, names, parameters, register
from cocoa.envs.gymnasium_adapter import GymnasiumEnv, register_gymnasium_envs
from cocoa.envs.dm_env_adapter import DmEnvAdapter
from cocoa.envs.from_gymnasium import from_gymnasium

register_gymnasium_envs()

__all__ = ["DmEnvAdapter", "Environment", "GymnasiumEnv", "LinearKeyToDoor", "Tree", "from_gymnasium",
           "env_class", "make", "names", "parameters", "register", "register_gymnasium_envs"]
