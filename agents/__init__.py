"""Credit-assignment agents: estimators in credit-matrix form, their models, and the agent wrapper."""

from cocoa.agents import advantage, reinforce, returns
from cocoa.agents.advantage import Advantage
from cocoa.agents.agent import Agent, AgentConfig, AgentState
from cocoa.agents.estimator import Estimator, lookup, policy_surrogate
from cocoa.agents.policy import MLPPolicy, tabular_policy
from cocoa.agents.registry import (agent_parameters, estimator_parameters, is_exact, make, make_estimator,
                                   make_for_env, names, register)
from cocoa.agents.reinforce import Reinforce

__all__ = [
    "Advantage", "Agent", "AgentConfig", "AgentState", "Estimator", "MLPPolicy", "Reinforce",
    "advantage", "agent_parameters", "estimator_parameters", "is_exact", "make", "make_estimator",
    "make_for_env", "names",
    "lookup", "policy_surrogate", "register", "reinforce", "returns", "tabular_policy",
]
