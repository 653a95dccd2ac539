"""From a validated :class:`~nqs.config.Config` to a finished run folder.

* :mod:`.build` — config → objects, one function per section (:func:`build`);
* :mod:`.lattice`, :mod:`.models` — the ``[lattice]`` and ``[model]`` sections;
* :mod:`.references` — exact energies (ED, sectors, tabulated) to compare with;
* :mod:`.evaluate` — the final evaluation (energy, correlations, Lanczos step);
* :mod:`.run_folder` — :func:`solve`: build, run the driver's loop, evaluate, write the run folder;
* :mod:`.imaginary_time` — the ``nqs imaginary-time`` command.
"""

from .build import Parts, Problem, build
from .evaluate import correlation_ratio, evaluate, lanczos_evaluate, spin_samples
from .imaginary_time import imaginary_time
from .references import exact_levels, exact_reference, sector_table
from .run_folder import join_processes, run, solve

__all__ = [
    "Parts",
    "Problem",
    "build",
    "correlation_ratio",
    "evaluate",
    "lanczos_evaluate",
    "spin_samples",
    "imaginary_time",
    "exact_levels",
    "exact_reference",
    "sector_table",
    "join_processes",
    "run",
    "solve",
]
