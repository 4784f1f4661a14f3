"""Shared test configuration: fixtures live in ``tests/fixtures/`` (one module per service)."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.dask",
    "tests.fixtures.common",
    "tests.fixtures.lake",
    "tests.fixtures.s3",
    "tests.fixtures.postgres",
    "tests.fixtures.redis",
    "tests.fixtures.llm_server",
    "tests.fixtures.gateway",
    "tests.fixtures.browser",
]
