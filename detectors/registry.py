"""The one place where drift methods are registered by name.

Configuration validation, alert rules, dashboards and the CLI enumerate
:data:`REGISTRY` instead of repeating method names.

>>> sorted(REGISTRY)[:3]
['chisquare', 'ks', 'psi']
>>> REGISTRY["psi"].default_threshold
0.2
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from detectors import chisquare, ks, psi
from detectors.base import MethodSpec

__all__ = ["REGISTRY", "methods_for", "get_method", "choose_method"]


def _build(specs: Iterable[MethodSpec]) -> MappingProxyType[str, MethodSpec]:
    table: dict[str, MethodSpec] = {}
    for spec in specs:
        if spec.name in table:
            raise ValueError(f"method {spec.name!r} registered twice")
        table[spec.name] = spec
    return MappingProxyType(table)


REGISTRY: MappingProxyType[str, MethodSpec] = _build([psi.SPEC, ks.SPEC, chisquare.SPEC])


def get_method(name: str) -> MethodSpec:
    """The method registered as ``name``; a KeyError names the allowed methods."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown drift method {name!r}; allowed: {', '.join(sorted(REGISTRY))}") from None


def methods_for(kind: str) -> list[str]:
    """Names of the methods that apply to features of ``kind``."""
    return sorted(name for name, spec in REGISTRY.items() if kind in spec.kinds)


def choose_method(kind: str, n_distinct: int | None = None) -> str:
    """The method used when the configuration names none (``auto``).

    Numeric features with few distinct values behave like categories.
    """
    if kind == "numeric" and (n_distinct is None or n_distinct > 20):
        return "ks"
    return "chisquare"
