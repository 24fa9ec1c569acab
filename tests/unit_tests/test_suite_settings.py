"""The suite is deterministic: Hypothesis draws the same examples on every run unless a
person opts into exploring (``IMAGEGEN_HYPOTHESIS_PROFILE=explore``, see docs/testing.md)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import HYPOTHESIS_PROFILE_ENV


def _draws() -> list[int]:
    seen: list[int] = []

    @settings(max_examples=25)
    @given(st.integers())
    def record(value: int) -> None:
        seen.append(value)

    record()
    return seen


@pytest.mark.skipif(
    os.environ.get(HYPOTHESIS_PROFILE_ENV, "ci") != "ci", reason="an exploratory run"
)
def test_hypothesis_is_derandomized_by_default() -> None:
    assert settings.default.derandomize is True
    assert settings.default.database is None  # nothing written into the tree
    assert _draws() == _draws()


def test_the_exploratory_profile_is_random() -> None:
    explore = settings.get_profile("explore")
    assert explore.derandomize is False
    assert explore.max_examples > settings.get_profile("ci").max_examples
