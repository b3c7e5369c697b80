"""cocoa: long-term credit assignment in reinforcement learning, in JAX."""

from cocoa import types
from cocoa import envs
from cocoa.types import TabularMDP, Trajectory

__version__ = "0.1.0"

__all__ = ["TabularMDP", "Trajectory", "envs", "types", "__version__"]
