"""Credit-assignment agents: estimators in credit-matrix form, their models, and the agent wrapper."""

from cocoa.agents import advantage, cocoa, hca_return, hindsight, q_critic, reinforce, returns, trajcv
from cocoa.agents.advantage import Advantage
from cocoa.agents.agent import Agent, AgentConfig, AgentState
from cocoa.agents.cocoa import CocoaFeature, CocoaReward, HcaState
from cocoa.agents.hca_return import HcaReturn
from cocoa.agents.estimator import Estimator, lookup, policy_surrogate
from cocoa.agents.policy import MLPPolicy, tabular_policy
from cocoa.agents.q_critic import QCritic
from cocoa.agents.registry import (agent_parameters, estimator_parameters, is_exact, make, make_estimator,
                                   make_for_env, names, register)
from cocoa.agents.reinforce import Reinforce
from cocoa.agents.trajcv import TrajCV

__all__ = [
    "Advantage", "Agent", "AgentConfig", "AgentState", "Estimator", "MLPPolicy", "Reinforce",
    "advantage", "agent_parameters", "estimator_parameters", "is_exact", "make", "make_estimator",
    "make_for_env", "names",
    "lookup", "policy_surrogate", "register", "reinforce", "returns", "tabular_policy",
    "QCritic", "TrajCV", "q_critic", "trajcv",
    "CocoaFeature", "CocoaReward", "HcaReturn", "HcaState", "cocoa", "hca_return", "hindsight",
]
