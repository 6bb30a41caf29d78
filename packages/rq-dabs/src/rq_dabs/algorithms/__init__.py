"""Pretraining algorithms behind one registry.

>>> sorted(ALGORITHMS)
['emix', 'random', 'rq', 'shed']
>>> canonical_name("none")  # the name before issue 15: random init
'random'
>>> build_algorithm("emix", dim=256, lambda_form="reference_batch_mean").lambda_form
'reference_batch_mean'
"""

from __future__ import annotations

from rq_dabs.algorithms.base import PretrainingAlgorithm
from rq_dabs.algorithms.emix import EMix
from rq_dabs.algorithms.rq_simclr import RQSimCLR
from rq_dabs.algorithms.scratch import Scratch
from rq_dabs.algorithms.shed import ShED

__all__ = [
    "ALGORITHMS",
    "EMix",
    "PretrainingAlgorithm",
    "RQSimCLR",
    "Scratch",
    "ShED",
    "build_algorithm",
    "canonical_name",
]

ALGORITHMS: dict[str, type[PretrainingAlgorithm]] = {
    "rq": RQSimCLR,
    "emix": EMix,
    "shed": ShED,
    "random": Scratch,  # random init: every app names this row `random`
}
# Earlier names still accepted on input; results always carry the canonical one.
ALIASES = {"none": "random"}


def canonical_name(name: str) -> str:
    """The registry's name of algorithm ``name`` (``none`` -> ``random``)."""
    return ALIASES.get(name, name)


def build_algorithm(name: str, *, dim: int, **options) -> PretrainingAlgorithm:
    """Instantiate algorithm ``name`` with its options (``dim``: the encoder width, for ShED)."""
    name = canonical_name(name)
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {sorted(ALGORITHMS)}")
    if name == "shed":
        options = {"dim": dim, **options}
    try:
        return ALGORITHMS[name](**options)
    except TypeError as err:
        raise ValueError(f"bad options for algorithm {name!r}: {err}") from None
