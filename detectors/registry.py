"""The one place where drift methods are registered by name.

Configuration validation, alert rules, dashboards and the CLI enumerate
:data:`REGISTRY` instead of repeating method names.

>>> sorted(REGISTRY)[:3]
['chisquare', 'domain_classifier', 'hellinger']
>>> REGISTRY["psi"].default_threshold
0.2
>>> methods_for("categorical")
['chisquare', 'hellinger', 'jensenshannon', 'psi', 'unseen_share']
>>> choose_method("numeric"), choose_method("numeric", n_distinct=7), choose_method("categorical")
('wasserstein', 'chisquare', 'chisquare')
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from detectors import (
    chisquare,
    domain_classifier,
    hellinger,
    jensenshannon,
    ks,
    pca_reconstruction,
    psi,
    unseen,
    wasserstein,
)
from detectors.base import MethodSpec

__all__ = ["DISCRETE_LIMIT", "REGISTRY", "choose_method", "get_method", "methods_for"]

# Numeric features with at most this many distinct reference values are tested as categories.
DISCRETE_LIMIT = 20


def _build(specs: Iterable[MethodSpec]) -> MappingProxyType[str, MethodSpec]:
    table: dict[str, MethodSpec] = {}
    for spec in specs:
        if spec.name in table:
            raise ValueError(f"method {spec.name!r} registered twice")
        table[spec.name] = spec
    return MappingProxyType(table)


REGISTRY: MappingProxyType[str, MethodSpec] = _build(
    [
        psi.SPEC,
        ks.SPEC,
        wasserstein.SPEC,
        jensenshannon.SPEC,
        hellinger.SPEC,
        chisquare.SPEC,
        unseen.SPEC,
        pca_reconstruction.SPEC,
        domain_classifier.SPEC,
    ]
)


def get_method(name: str) -> MethodSpec:
    """The method registered as ``name``; a KeyError names the allowed methods."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown drift method {name!r}; allowed: {', '.join(sorted(REGISTRY))}") from None


def methods_for(kind: str) -> list[str]:
    """Names of the methods that apply to features of ``kind`` (numeric, categorical, multivariate)."""
    return sorted(name for name, spec in REGISTRY.items() if kind in spec.kinds)


def choose_method(kind: str, n_distinct: int | None = None) -> str:
    """The method used when the configuration names none (``auto``).

    Parameters
    ----------
    kind
        ``"numeric"``, ``"categorical"`` or ``"multivariate"``.
    n_distinct
        Distinct values of the feature in the reference, None when unknown. Numeric
        features with at most :data:`DISCRETE_LIMIT` distinct values behave like
        categories (their quantile bins collapse onto the values). Pass the number of
        distinct *values*, not the number of bins.

    The reasoning behind each choice is the table in docs/detectors.md.
    """
    if kind == "numeric":
        return "chisquare" if n_distinct is not None and n_distinct <= DISCRETE_LIMIT else "wasserstein"
    if kind == "categorical":
        return "chisquare"
    if kind == "multivariate":
        return "domain_classifier"
    raise ValueError(f"kind must be one of numeric, categorical, multivariate; got {kind!r}")
