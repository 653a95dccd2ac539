"""Samplers: Metropolis (spin flips, Sz-conserving exchanges, electron hops) over many chains; exact enumeration."""

from .exact import ExactSampler
from .hop import HopExchangeRule, HopRule, SpinExchangeRule
from .metropolis import ExchangeRule, LocalRule, MetropolisSampler, SamplerState

__all__ = [
    "MetropolisSampler",
    "SamplerState",
    "LocalRule",
    "ExchangeRule",
    "ExactSampler",
    "HopRule",
    "SpinExchangeRule",
    "HopExchangeRule",
]
