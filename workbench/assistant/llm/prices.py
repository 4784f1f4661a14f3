"""Per-model token prices, so every answer can say what it cost.

Prices are data: the built-in table below covers common models (USD per million tokens,
input/output) and is overridden by ``<home>/llm_prices.json`` or ``WORKBENCH_LLM_PRICES``
(a JSON file path) with the same shape, because self-hosted endpoints (vLLM, Ollama) cost
nothing per token and commercial prices change more often than the code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from workbench.config import Settings, get_settings
from workbench.errors import ConfigError

#: model name (or prefix) -> (USD per 1M input tokens, USD per 1M output tokens)
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
}


def price_table(settings: Settings | None = None) -> dict[str, tuple[float, float]]:
    """The built-in prices updated with the user's overrides (file in home or WORKBENCH_LLM_PRICES)."""
    settings = settings or get_settings()
    table = dict(DEFAULT_PRICES)
    candidates = [os.environ.get("WORKBENCH_LLM_PRICES"), str(settings.home_path / "llm_prices.json")]
    for candidate in candidates:
        if not candidate or not Path(candidate).exists():
            continue
        try:
            raw = json.loads(Path(candidate).read_text())
            table.update({str(k): (float(v[0]), float(v[1])) for k, v in raw.items()})
        except (ValueError, TypeError, IndexError, KeyError) as e:
            raise ConfigError(
                f"cannot read the LLM price table {candidate}: {e}",
                'expected {"model": [usd_per_1m_input, usd_per_1m_output], ...}',
            ) from e
    return table


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int, settings: Settings | None = None) -> float:
    """Cost of one call; unknown models cost 0 (self-hosted), matched by longest prefix."""
    table = price_table(settings)
    match = max((name for name in table if model.startswith(name)), key=len, default=None)
    if match is None:
        return 0.0
    usd_in, usd_out = table[match]
    return (prompt_tokens * usd_in + completion_tokens * usd_out) / 1_000_000
