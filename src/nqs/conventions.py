"""The one place that states nqs's conventions: basis encoding, units, signs, gradients.

Basis encoding
--------------
* Spin-1/2 configurations are int8 arrays ``sigma`` with σᶻ_i ∈ {+1 = ↑, −1 = ↓}.
  Total magnetization ``S^z = Σ_i σ_i / 2`` (so ``total_sz = 0`` means N↑ = N↓).
* Basis-state integer code (exact enumeration, ED): bit ``i`` (value ``2**i``) of the code is 1
  when site ``i`` is ↑.  Basis lists are sorted by this code.
* Fermion occupations (:mod:`nqs.hilbert.fermions`, :mod:`nqs.operators.fermion`): int8 n ∈ {0, 1},
  orbital index ``i = site + n_sites·spin`` (all ↑ first); c_i = (Π_{j<i} (−1)^{n_j}) a_i, so the
  Jordan–Wigner string runs over orbitals of smaller index (as in ``shared/notes/rbm_pp.md``).

Purifications: ancilla spins in the σˣ basis
--------------------------------------------
``nqs thermal`` writes the purification of a system of N spins on 2N: the system sites 0..N−1 in σᶻ as
everywhere, the ancillas N..2N−1 in σˣ (value +1 ⇔ |+⟩, −1 ⇔ |−⟩; bit set ⇔ |+⟩ in a basis code).
H acts as H ⊗ 1 on the system only, so nothing about H changes.  The β = 0 Bell pair
(|↑↑⟩ + |↓↓⟩)/√2 then has the amplitudes ½·(−1)^{[s=↓][x=−]}, with no zeros
(:func:`nqs.models.product.bell_pairs_params`, :func:`nqs.exact.dynamics.bell_pairs_state`);
``[thermal] ancilla = "z"`` keeps the ancillas in σᶻ, where only the equal pairs have weight.

Units (printed with every energy)
---------------------------------
Each Hamiltonian kind states its units where it is registered (:data:`nqs.registry.HAMILTONIANS`;
:func:`nqs.hamiltonians.units_for` reads them):

* ``ising``:  H = −J Σ⟨ij⟩ σᶻ_i σᶻ_j − h Σ_i σˣ_i  with **Pauli** matrices (critical at h = J in 1D).
* ``heisenberg``, ``xxz``, ``j1j2``: H = Σ J_ij S_i·S_j with **spin-1/2** operators S = σ/2
  (so the chain's E₀/N → 1/4 − ln 2 ≈ −0.4431).
* ``pauli`` (user-written sums of Pauli strings): whatever coefficients the user gives, times
  Pauli matrices.

Operators are named apart: ``sx, sy, sz`` are spin-1/2 operators (σ/2); ``X, Y, Z`` are Pauli matrices.

Sign conventions
----------------
* Matrix elements: for a Pauli string P and configuration x, P|x⟩ = m(x)|x'⟩ with
  X|s⟩ = |−s⟩, Y|s⟩ = i s|−s⟩, Z|s⟩ = s|s⟩.
* No sign rule is hidden anywhere.  The Marshall sign rule is an explicit model option
  (``[model] marshall_sign = true``): ψ(σ) → (−1)^{N↑ on sublattice 1} ψ(σ) on bipartite lattices.

Gradient convention
-------------------
* ``O_k(σ) = ∂ log ψ(σ) / ∂ θ_k``.  For holomorphic models with complex parameters this is the
  complex derivative; for real parameters it is the (complex-valued) partial derivative.
  Non-holomorphic complex parameters are split into real and imaginary parts.
* Force ``F_k = ⟨O_k^* (E_loc − ⟨E_loc⟩)⟩``; quantum geometric tensor
  ``S_kl = ⟨O_k^* O_l⟩ − ⟨O_k^*⟩⟨O_l⟩``.  For real parameters the energy gradient is
  ``∂E/∂θ = 2 Re F`` and SR uses ``Re S``, ``Re F``.
* Both are pinned by finite-difference tests in the real and imaginary directions.

Dtypes
------
float64 / complex128 by default (``nqs`` enables ``jax_enable_x64`` at its entry points through
:func:`nqs.runtime.configure_cpu`), never at import time.
"""

from __future__ import annotations

#: Bases the ancillas of a purification are written in (see "Purifications" above).
ANCILLA_BASES = ("x", "z")
SPIN_UP = 1
SPIN_DOWN = -1
