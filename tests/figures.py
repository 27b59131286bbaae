"""Figures tests measured (faults, fuzzing, the security matrix), printed in the summary with or without ``-s``.

A test records its figures with ``record_figures(scenario, {...})``. They travel to the
terminal in the test's report (pytest-xdist sends reports, not module state, from its
workers), and the summary prints one line per scenario. Loaded by ``tests/conftest.py``
so that the xdist controller, which collects nothing itself, prints them too.
"""

from typing import Any

import pytest

SECTION = "measured figures"
_recorded: list[str] = []


def record_figures(scenario: str, figures: dict[str, Any]) -> None:
    """Keep ``figures`` (name -> number or text) of ``scenario`` for the end-of-run summary."""
    _recorded.append(format_figures(scenario, figures))


def format_figures(scenario: str, figures: dict[str, Any]) -> str:
    def shown(value: Any) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    return f"{scenario}: " + ", ".join(f"{name}={shown(value)}" for name, value in figures.items())


_start_key = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    item.stash[_start_key] = len(_recorded)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """The teardown report carries every figure recorded since the test's setup began."""
    report = yield
    if call.when == "teardown":
        mine = _recorded[item.stash.get(_start_key, len(_recorded)) :]
        if mine:
            report.sections.append((SECTION, "\n".join(mine)))
    return report


def pytest_terminal_summary(terminalreporter) -> None:
    lines = [
        text
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "teardown"
        for name, text in getattr(report, "sections", ())
        if name == SECTION
    ]
    if lines:
        terminalreporter.write_sep("=", SECTION)
        for text in lines:
            terminalreporter.write_line(text)
