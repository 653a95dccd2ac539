"""Drivers: what turns a model, a Hamiltonian and a sampler into a computation (ground-state VMC, the DBM's
joint-chain VMC, ...), and the one run loop they share."""
