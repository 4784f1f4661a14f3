"""One client for the configured language model, through LangChain (llm/models.py).

Any OpenAI-compatible endpoint by default (OpenAI, Azure, vLLM, Ollama, llama.cpp), any other
LangChain provider by configuration. Retries are ours, not the SDK's (models are built with
``max_retries=0``): a timeout, a connection error, a 429 or a 5xx is retried
``settings.llm_max_retries`` times with a short backoff, then surfaces as
:class:`ServiceUnavailable` so the assistant can fall back to the offline planner. Every call
records its token usage (LangChain's ``usage_metadata``, the same for every provider) and cost,
and a daily budget (``settings.llm_daily_budget_usd``) stops spending before it is exceeded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from workbench.assistant.llm.models import OPENAI_API, chat_model, embeddings_model
from workbench.assistant.llm.prices import cost_usd
from workbench.config import Settings, get_settings
from workbench.errors import ConfigError, ServiceUnavailable, WorkbenchError

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
    """A model's reply; with a schema, ``parsed`` is the validated object and ``text`` its JSON."""

    text: str
    model: str
    usage: Usage
    attempts: int
    parsed: Any = None


class LLMClient:
    """Chat completions and embeddings with retries, usage accounting and a budget."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        if not self.settings.llm_configured:
            raise ConfigError(
                "no language model is configured",
                "set OPENAI_API_KEY (and OPENAI_BASE_URL for a non-OpenAI endpoint) and WORKBENCH_LLM_MODEL",
            )
        self._chat_models: dict[str, Any] = {}
        self._embedders: dict[str, Any] = {}
        #: index into _schema_formats: the first response_format this endpoint accepted
        self._format_level = 0

    def _model(self, model: str) -> Any:
        if model not in self._chat_models:
            self._chat_models[model] = chat_model(self.settings, model)
        return self._chat_models[model]

    # --- public ------------------------------------------------------------------------------
    def chat(
        self, messages: list[dict[str, str]], model: str, json_mode: bool = False, schema: type[Any] | None = None
    ) -> ChatReply:
        """One chat call; retried on timeouts and server errors, then ServiceUnavailable.

        ``schema`` (a pydantic model) asks for structured output (JSON schema). A reply that does
        not fit it is not an error here: ``parsed`` is None and ``text`` is the raw reply, which
        the caller's robust parser and repair loop handle as they handle any model.
        """
        self._check_budget()
        llm = self._model(model)
        openai_api = self.settings.llm_provider in OPENAI_API
        if schema is not None and openai_api:
            out, attempts = self._schema_call(llm, messages, schema)
        else:
            if schema is not None:
                runnable = llm.with_structured_output(schema, include_raw=True)
            elif json_mode and openai_api:
                runnable = llm.bind(response_format={"type": "json_object"})
            else:
                runnable = llm
            out, attempts = self._with_retries(lambda: runnable.invoke(messages), "chat")
        raw, parsed = (out["raw"], out["parsed"]) if isinstance(out, dict) else (out, None)
        if schema is not None and parsed is None and openai_api:
            parsed = _validated(schema, _text(raw))
        text = parsed.model_dump_json(exclude_none=True) if parsed is not None else _text(raw)
        return ChatReply(text=text, model=model, usage=self._usage(model, raw), attempts=attempts, parsed=parsed)

    def embed(self, texts: list[str], model: str) -> tuple[list[list[float]], Usage]:
        """Embeddings of ``texts`` in order.

        LangChain's ``Embeddings`` interface reports no token counts, so the usage counts the
        call only (embedding prices are ~1/100 of chat prices; answers never embedded more than
        the question).
        """
        self._check_budget()
        if model not in self._embedders:
            self._embedders[model] = embeddings_model(self.settings, model)
        embedder = self._embedders[model]
        vectors, _ = self._with_retries(lambda: embedder.embed_documents(texts), "embeddings")
        return [list(v) for v in vectors], Usage(calls=1, models=[model])

    # --- internals ---------------------------------------------------------------------------
    def _schema_call(self, llm: Any, messages: list[dict[str, str]], schema: type[Any]) -> tuple[Any, int]:
        """A structured-output call with the strongest ``response_format`` the endpoint accepts.

        Why: OpenAI, vLLM and recent Ollama take ``json_schema``; llama.cpp's Python server
        rejects it (HTTP 500, "Input should be 'text' or 'json_object'") but constrains
        ``json_object`` to a ``schema`` given beside it; others take plain ``json_object``.
        Without the downgrade every call to such a server failed and the offline planner
        silently answered instead of the model. The level that worked is kept for the client.
        """
        formats = _schema_formats(schema)
        while True:
            fmt = formats[self._format_level]
            runnable = llm.bind(response_format=fmt)
            try:
                return self._with_retries(lambda r=runnable: r.invoke(messages), "chat")
            except ServiceUnavailable as e:
                refused_format = "response_format" in str(e) or "json_schema" in str(e)
                if not refused_format or self._format_level + 1 >= len(formats):
                    raise
                self._format_level += 1
                log.info("the endpoint refused response_format %r; using %r", fmt["type"], formats[self._format_level])

    def _with_retries(self, call: Any, what: str) -> tuple[Any, int]:
        import openai

        retryable = (
            openai.APITimeoutError,
            openai.APIConnectionError,
            openai.RateLimitError,
            openai.InternalServerError,
            TimeoutError,  # other providers' SDKs (httpx, aiohttp, botocore) raise these subclasses
            ConnectionError,
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
            except WorkbenchError:
                raise
            except Exception as e:  # another provider's SDK error: the assistant falls back, the log has it
                log.warning("LLM %s call failed: %r", what, e)
                raise ServiceUnavailable(
                    f"the language model call failed ({type(e).__name__}): {e}",
                    "check WORKBENCH_LLM_PROVIDER, the provider's credentials and WORKBENCH_LLM_MODEL",
                ) from e
        kind = "timed out" if isinstance(last, openai.APITimeoutError) else "failed"
        raise ServiceUnavailable(
            f"the language model endpoint {kind} after {attempts} attempts: {last}",
            "check OPENAI_BASE_URL and the endpoint's health, or raise WORKBENCH_LLM_TIMEOUT_S",
            attempts=attempts,
        ) from last

    def _usage(self, model: str, message: Any) -> Usage:
        counts = getattr(message, "usage_metadata", None) or {}
        prompt = int(counts.get("input_tokens", 0) or 0)
        completion = int(counts.get("output_tokens", 0) or 0)
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


def _text(message: Any) -> str:
    """A reply's text: LangChain content is a string, or a list of parts for some providers."""
    content = getattr(message, "content", "") or ""
    if isinstance(content, str):
        return content
    return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content if isinstance(p, str | dict))


def _json_schema_format(schema: type[Any]) -> dict[str, Any]:
    """OpenAI's ``response_format`` for a pydantic model, as a plain dict.

    Not the pydantic class itself: langchain-openai then parses through the SDK, which raises on a
    reply that does not fit and loses the reply text the repair loop needs.
    """
    return {
        "type": "json_schema",
        "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(), "strict": False},
    }


def _schema_formats(schema: type[Any]) -> list[dict[str, Any]]:
    """``response_format`` values for ``schema``, strongest first (see ``LLMClient._schema_call``)."""
    return [
        _json_schema_format(schema),
        {"type": "json_object", "schema": schema.model_json_schema()},
        {"type": "json_object"},
    ]


def _validated(schema: type[Any], text: str) -> Any:
    """``text`` as an instance of ``schema``, or None when it is not exactly that JSON."""
    from pydantic import ValidationError

    try:
        return schema.model_validate_json(text)
    except ValidationError:
        return None
