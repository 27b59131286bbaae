"""Fixtures of the fault tests; ``record_figures`` is the way a test reports what it measured."""

import pytest

from tests.figures import record_figures

__all__ = ["record_figures"]


@pytest.fixture
def report_figures():
    """``record_figures`` as a fixture: ``report_figures("scenario", {"lost": 0, ...})``."""
    return record_figures
