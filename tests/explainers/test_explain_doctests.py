"""The examples in the explainers' docstrings run (pytest collects doctests only under detectors/)."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["encoding", "rows", "sampling", "task_codec", "window_attribution"])
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"explainers.{name}")
    failures, attempted = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failures == 0
