"""Environments: functional, jittable, with exact tabular forms for the oracle."""

from cocoa.envs.base import Environment
from cocoa.envs.key_to_door import LinearKeyToDoor
from cocoa.envs.registry import make, names, parameters, register

__all__ = ["Environment", "LinearKeyToDoor", "make", "names", "parameters", "register"]
