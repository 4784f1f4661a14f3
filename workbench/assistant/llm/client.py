"""One client for any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp).

Retries are ours, not the SDK's (the SDK client is built with ``max_retries=0``): a timeout,
a connection error, a 429 or a 5xx is retried ``settings.llm_max_retries`` times with a short
backoff, then surfaces as :class:`ServiceUnavailable` so the assistant can fall back to the
offline planner. Every call records its token usage and cost, and a daily budget
(``settings.llm_daily_budget_usd``) stops spending before it is exceeded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from workbench.assistant.llm.prices import cost_usd
from workbench.config import Settings, get_settings
from workbench.errors import ConfigError, ServiceUnavailable

log = logging.getLogger(__name__)


@dataclass
class Usage:
    """Tokens and money spent, summed over calls (one question may make several)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    models: list[str] = field(default_factory=list)

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.calls += other.calls
        self.models.extend(m for m in other.models if m not in self.models)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt_tokens,
            "completion": self.completion_tokens,
            "total": self.total_tokens,
            "calls": self.calls,
            "models": list(self.models),
        }


@dataclass
class ChatReply:
    text: str
    model: str
    usage: Usage
    attempts: int


class LLMClient:
    """Chat completions and embeddings with retries, usage accounting and a budget."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        if not self.settings.llm_configured:
            raise ConfigError(
                "no language model is configured",
                "set OPENAI_API_KEY (and OPENAI_BASE_URL for a non-OpenAI endpoint) and WORKBENCH_LLM_MODEL",
            )
        from openai import OpenAI

        self._client = OpenAI(
            api_key=self.settings.openai_api_key or "not-needed",
            base_url=self.settings.openai_base_url,
            timeout=self.settings.llm_timeout_s,
            max_retries=0,
        )

    # --- public ------------------------------------------------------------------------------
    def chat(self, messages: list[dict[str, str]], model: str, json_mode: bool = False) -> ChatReply:
        """One chat completion; retried on timeouts and server errors, then ServiceUnavailable."""
        self._check_budget()
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.settings.llm_max_tokens,
        }
        if json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        response, attempts = self._with_retries(lambda: self._client.chat.completions.create(**kwargs), "chat")
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content if choice and choice.message else None) or ""
        usage = self._usage(model, response)
        return ChatReply(text=text, model=model, usage=usage, attempts=attempts)

    def embed(self, texts: list[str], model: str) -> tuple[list[list[float]], Usage]:
        """Embeddings of ``texts`` in order."""
        self._check_budget()
        response, _ = self._with_retries(lambda: self._client.embeddings.create(model=model, input=texts), "embeddings")
        vectors = [list(item.embedding) for item in sorted(response.data, key=lambda d: d.index)]
        return vectors, self._usage(model, response)

    # --- internals ---------------------------------------------------------------------------
    def _with_retries(self, call: Any, what: str) -> tuple[Any, int]:
        import openai

        retryable = (
            openai.APITimeoutError,
            openai.APIConnectionError,
            openai.RateLimitError,
            openai.InternalServerError,
        )
        attempts = 0
        last: Exception | None = None
        for attempt in range(self.settings.llm_max_retries + 1):
            attempts = attempt + 1
            try:
                return call(), attempts
            except retryable as e:
                last = e
                log.warning("LLM %s call failed (attempt %d): %s", what, attempts, e)
                if attempt < self.settings.llm_max_retries:
                    time.sleep(min(0.25 * 2**attempt, 2.0))
            except openai.APIStatusError as e:
                if e.status_code >= 500:
                    last = e
                    continue
                raise ServiceUnavailable(
                    f"the language model endpoint refused the request ({e.status_code}): {e.message}",
                    "check OPENAI_API_KEY, OPENAI_BASE_URL and WORKBENCH_LLM_MODEL",
                ) from e
            except openai.OpenAIError as e:
                raise ServiceUnavailable(f"the language model call failed: {e}", "check the LLM endpoint") from e
        kind = "timed out" if isinstance(last, openai.APITimeoutError) else "failed"
        raise ServiceUnavailable(
            f"the language model endpoint {kind} after {attempts} attempts: {last}",
            "check OPENAI_BASE_URL and the endpoint's health, or raise WORKBENCH_LLM_TIMEOUT_S",
            attempts=attempts,
        ) from last

    def _usage(self, model: str, response: Any) -> Usage:
        raw = getattr(response, "usage", None)
        prompt = int(getattr(raw, "prompt_tokens", 0) or 0)
        completion = int(getattr(raw, "completion_tokens", 0) or 0)
        usage = Usage(prompt, completion, cost_usd(model, prompt, completion, self.settings), 1, [model])
        self._record_spend(usage.cost_usd)
        return usage

    # --- budget ------------------------------------------------------------------------------
    def _spend_file(self) -> Any:
        return self.settings.home_path / "llm_spend.json"

    def spent_today(self) -> float:
        path = self._spend_file()
        if not path.exists():
            return 0.0
        try:
            data = json.loads(path.read_text())
        except ValueError:
            return 0.0
        return float(data.get(dt.date.today().isoformat(), 0.0))

    def _record_spend(self, amount: float) -> None:
        if amount <= 0:
            return
        path = self._spend_file()
        today = dt.date.today().isoformat()
        try:
            data = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            data = {}
        data = {today: float(data.get(today, 0.0)) + amount}
        path.write_text(json.dumps(data))

    def _check_budget(self) -> None:
        budget = self.settings.llm_daily_budget_usd
        if budget > 0 and self.spent_today() >= budget:
            raise ServiceUnavailable(
                f"today's LLM budget of ${budget:.2f} is spent",
                "raise WORKBENCH_LLM_DAILY_BUDGET_USD, or wait until tomorrow (the offline planner still answers)",
            )
