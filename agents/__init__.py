"""Credit-assignment agents: estimators in credit-matrix form, their models, and the agent wrapper."""

from cocoa.agents import (advantage, cocoa_feature, cocoa_reward, credit, hca_return, hca_state, hindsight,
                          hindsight_estimator, q_critic, q_model, reinforce, returns, trajcv)
from cocoa.agents.advantage import Advantage
from cocoa.agents.agent import Agent, AgentConfig, AgentState
from cocoa.agents.cocoa_feature import CocoaFeature
from cocoa.agents.cocoa_reward import CocoaReward
from cocoa.agents.hca_state import HcaState
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
    "QCritic", "TrajCV", "q_critic", "q_model", "trajcv",
    "CocoaFeature", "CocoaReward", "HcaReturn", "HcaState", "cocoa_feature", "cocoa_reward", "credit",
    "hca_return", "hca_state", "hindsight", "hindsight_estimator",
]
