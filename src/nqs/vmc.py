"""The VMC driver: one jitted step on a pytree state; the Python loop only logs and checkpoints.

State ``(params, opt_state, sampler_state, step)``; model, Hamiltonian, sampler and optimizer
settings are static.  ``vmc_step(state) -> (state, info)``:

1. sample (σ (n_chains, n_per_chain, N), weights 1/n or |ψ|²/Z);
2. local energies E_loc from the operator's moves and the model's fast path;
3. statistics of E_loc (mean, error with autocorrelation, variance, R̂);
4. per-sample log-derivatives O and the force;
5. SR direction (dense or MinSR) or the plain gradient;
6. optax update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from . import estimators, sr
from .jax_utils import param_mode, tree_all_finite
from .models.base import Model
from .stats import statistics


class VMCState(NamedTuple):
    params: Any
    opt_state: Any
    sampler_state: Any
    step: jax.Array


@dataclass(frozen=True, eq=False)
class SplitComplex(Model):
    """Presents a non-holomorphic model with complex parameters as one with real (Re, Im) pairs."""

    inner: Model

    @property
    def n_sites(self):  # type: ignore[override]
        return self.inner.n_sites

    holomorphic = False

    @staticmethod
    def split(params):
        return jax.tree_util.tree_map(lambda x: jnp.stack([jnp.real(x), jnp.imag(x)]), params)

    @staticmethod
    def join(params):
        return jax.tree_util.tree_map(lambda x: x[0] + 1j * x[1], params)

    def init(self, key):
        return self.split(self.inner.init(key))

    def log_psi(self, params, sigma):
        return self.inner.log_psi(self.join(params), sigma)

    def cache(self, params, sigma):
        return self.inner.cache(self.join(params), sigma)

    def log_ratio(self, params, sigma, cache, *move):
        return self.inner.log_ratio(self.join(params), sigma, cache, *move)

    def update_cache(self, params, sigma, cache, *move):
        return self.inner.update_cache(self.join(params), sigma, cache, *move)


@dataclass(frozen=True)
class OptimizerConfig:
    """``kind`` is "sr", "minsr", "adam" or "sgd"; SR settings in ``sr``."""

    kind: str = "sr"
    learning_rate: float = 0.02
    sr: sr.SRConfig = sr.SRConfig()
    learning_rate_final: float | None = None
    n_steps: int = 0

    def schedule(self):
        """Constant η, or a cosine decay from ``learning_rate`` to ``learning_rate_final`` over n_steps."""
        if self.learning_rate_final is None or self.n_steps <= 0:
            return self.learning_rate
        return optax.cosine_decay_schedule(
            self.learning_rate, self.n_steps, alpha=self.learning_rate_final / self.learning_rate
        )

    def transform(self) -> optax.GradientTransformation:
        if self.kind == "adam":
            return optax.adam(self.schedule())
        return optax.sgd(self.schedule())


@dataclass(frozen=True, eq=False)
class VMC:
    """Variational Monte Carlo for ``hamiltonian`` with ``model`` sampled by ``sampler``."""

    model: Model
    hamiltonian: Any
    sampler: Any
    optimizer: OptimizerConfig = OptimizerConfig()
    chunk_size: int | None = None

    def __post_init__(self):
        shapes = jax.eval_shape(self.model.init, jax.random.PRNGKey(0))
        m = param_mode(self.model, shapes)
        # non-holomorphic complex parameters are optimized as real (Re, Im) pairs
        object.__setattr__(self, "_model", SplitComplex(self.model) if m == "mixed" else self.model)
        object.__setattr__(self, "_mode", "real" if m == "mixed" else m)

    # ------------------------------------------------------------------ set-up
    def init(self, key, params=None) -> VMCState:
        """Fresh state from a PRNG key (parameters from ``model.init`` unless given)."""
        k_model, k_sampler = jax.random.split(key)
        if params is None:
            params = self.model.init(k_model)
        params = jax.tree_util.tree_map(jnp.asarray, params)
        if isinstance(self._model, SplitComplex):
            params = SplitComplex.split(params)
        opt_state = self.optimizer.transform().init(params)
        return VMCState(params, opt_state, self.sampler.init_state(k_sampler), jnp.zeros((), jnp.int64))

    def physical_params(self, params):
        """Parameters in the model's own form (undoes the (Re, Im) split where one was made)."""
        return SplitComplex.join(params) if isinstance(self._model, SplitComplex) else params

    @property
    def param_mode(self) -> str:
        """"holomorphic" (complex θ, complex derivatives) or "real"."""
        return self._mode

    def n_parameters(self, state: VMCState) -> int:
        return int(ravel_pytree(state.params)[0].size)

    def solver(self, state: VMCState) -> str:
        """The update rule actually used: "dense" or "minsr" for SR, else the optimizer kind."""
        if self.optimizer.kind == "minsr":
            return "minsr"
        if self.optimizer.kind != "sr":
            return self.optimizer.kind
        return self.optimizer.sr.choose(self.n_parameters(state), self.sampler.n_samples, self._mode,
                                        real_rows=bool(getattr(self._model, "real_derivatives", False)))

    # ------------------------------------------------------------------ pieces
    def estimate(self, params, sampler_state):
        """Sample and return ``(samples, weights (n_chains, n_per), e_loc, stats, sampler_state)``."""
        model = self._model
        samples, weights, sampler_state = self.sampler.sample(model, params, sampler_state)
        e_loc = estimators.local_energies(model, params, self.hamiltonian, samples, self.chunk_size)
        if weights is None:
            weights = jnp.full(e_loc.shape, 1.0 / e_loc.size)
            stats = statistics(e_loc)
        else:
            stats = statistics(e_loc, weights)
        return samples, weights, e_loc, stats, sampler_state

    def make_step(self, solver: str):
        """The jitted ``step(state) -> (state, info)``; ``solver`` (see :meth:`solver`) is static."""
        tx = self.optimizer.transform()

        def step(state: VMCState):
            params = state.params
            model, mode = self._model, self._mode
            samples, weights, e_loc, stats, sstate = self.estimate(params, state.sampler_state)
            O = estimators.log_derivatives(model, params, samples, mode, self.chunk_size)
            flat, unravel = ravel_pytree(params)
            shift = self.optimizer.sr.shift(state.step)
            if self.optimizer.kind in ("sr", "minsr"):
                d = sr.sr_direction(O, e_loc, weights, mode, shift, solver,
                                     self.optimizer.sr.cg_tol, self.optimizer.sr.cg_maxiter)
            else:
                d = sr.gradient(O, e_loc, weights, mode)
            d = d.astype(flat.dtype)
            updates, opt_state = tx.update(unravel(d), state.opt_state, params)
            new_params = optax.apply_updates(params, updates)
            finite = tree_all_finite(new_params) & jnp.isfinite(stats.mean) & jnp.isfinite(stats.variance)
            n_prop = jnp.maximum(sstate.n_proposed - state.sampler_state.n_proposed, 1)
            info = {
                "energy": stats,
                "acceptance": (sstate.n_accepted - state.sampler_state.n_accepted) / n_prop,
                "diag_shift": shift,
                "grad_norm": jnp.linalg.norm(d),
                "finite": finite,
            }
            return VMCState(new_params, opt_state, sstate, state.step + 1), info

        return jax.jit(step)


class NonFiniteError(RuntimeError):
    """The optimization produced NaN/inf; ``state`` is the last good state."""

    def __init__(self, step: int, state: VMCState, message: str):
        super().__init__(message)
        self.step = step
        self.state = state


def run(vmc: VMC, state: VMCState, n_steps: int, callback=None, step_fn=None):
    """Advance ``state`` until ``state.step == n_steps``; ``callback(state, info, seconds)`` after each.

    A step whose energy or new parameters are not finite is rejected: :class:`NonFiniteError`
    is raised carrying the last good state.  Returns the final state.
    """
    import time

    if step_fn is None:
        step_fn = vmc.make_step(vmc.solver(state))
    while int(state.step) < n_steps:
        t0 = time.perf_counter()
        new_state, info = step_fn(state)
        jax.block_until_ready(new_state.params)
        dt = time.perf_counter() - t0
        if not bool(info["finite"]):
            k = int(state.step)
            raise NonFiniteError(
                k, state,
                f"the optimization produced NaN or inf at step {k} "
                f"(energy {float(jnp.real(info['energy'].mean))!r})",
            )
        state = new_state
        if callback is not None and callback(state, info, dt) is False:
            break
    return state
