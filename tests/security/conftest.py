"""Registers the summary hook that prints the security matrix figures (``denied/attempts``)."""

from ._matrix import pytest_runtest_logreport, pytest_terminal_summary  # noqa: F401
