"""Samplers: Metropolis (local flips, Sz-conserving exchanges) over many chains, and exact enumeration."""

from .exact import ExactSampler
from .metropolis import ExchangeRule, LocalRule, MetropolisSampler, SamplerState

__all__ = ["MetropolisSampler", "SamplerState", "LocalRule", "ExchangeRule", "ExactSampler"]
