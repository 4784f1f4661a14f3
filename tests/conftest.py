"""Shared test configuration: fixtures live in ``tests/fixtures/`` (one module per service)."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.llm_server",
]
