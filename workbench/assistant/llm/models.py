"""LangChain chat models and embeddings, chosen by configuration.

LangChain is the integration layer: the planner, the summary rewriter and the embedder talk to
``langchain-core``'s ``BaseChatModel`` and ``Embeddings`` interfaces, so any provider LangChain
integrates works by configuration. The default provider, ``openai``, is ``langchain-openai``
pointed at ``OPENAI_BASE_URL`` when set, which covers OpenAI itself and every OpenAI-compatible
server (vLLM, Ollama's /v1, llama.cpp, LiteLLM). Any other ``WORKBENCH_LLM_PROVIDER`` goes
through ``init_chat_model`` / ``init_embeddings``: the provider's ``langchain-<provider>``
package must be installed, and its own environment variables (``ANTHROPIC_API_KEY``, AWS
credentials, ...) hold the keys.

Retries stay ours (``max_retries=0`` where the integration takes it): the client retries a
bounded number of times and then falls back to the offline planner, which an SDK retrying for
a minute would defeat.
"""

from __future__ import annotations

from typing import Any

from workbench.config import Settings
from workbench.errors import ConfigError

OPENAI = "openai"
#: providers that speak OpenAI's chat API (``response_format`` with a JSON schema or json_object)
OPENAI_API = frozenset({OPENAI, "azure_openai"})


def chat_model(settings: Settings, model: str) -> Any:
    """A ``BaseChatModel`` for ``model`` from the configured provider, deterministic (temperature 0)."""
    if settings.llm_provider == OPENAI:
        from langchain_openai import ChatOpenAI

        # OpenAI takes the cap as max_completion_tokens; llama.cpp's Python server (and older
        # compatible servers) read only max_tokens and, without it, run to the end of the context:
        # measured, one reply of Gemma 3 270M took minutes and blocked the server's queue.
        compatible = bool(settings.openai_base_url) and "api.openai.com" not in str(settings.openai_base_url)
        return ChatOpenAI(
            model=model,
            api_key=settings.openai_api_key or "not-needed",  # type: ignore[arg-type]
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout_s,
            max_retries=0,
            temperature=0,
            max_completion_tokens=settings.llm_max_tokens,
            extra_body={"max_tokens": settings.llm_max_tokens} if compatible else None,
        )
    # timeout, max_retries and max_tokens are LangChain's standard chat-model parameters
    return _init(
        settings.llm_provider,
        model,
        chat=True,
        timeout=settings.llm_timeout_s,
        max_retries=0,
        max_tokens=settings.llm_max_tokens,
    )


def embeddings_model(settings: Settings, model: str) -> Any:
    """An ``Embeddings`` for ``model`` from the configured provider.

    ``check_embedding_ctx_length=False``: langchain-openai otherwise tokenises the texts with
    tiktoken (whose encodings are downloaded on first use) and sends token ids, which
    OpenAI-compatible servers other than OpenAI's reject.
    """
    if settings.llm_provider == OPENAI:
        from langchain_openai import OpenAIEmbeddings

        return OpenAIEmbeddings(
            model=model,
            openai_api_key=settings.openai_api_key or "not-needed",  # type: ignore[arg-type]
            openai_api_base=settings.openai_base_url,
            request_timeout=settings.llm_timeout_s,
            max_retries=0,
            check_embedding_ctx_length=False,
        )
    return _init(settings.llm_provider, model, chat=False)


def _init(provider: str, model: str, *, chat: bool, **params: Any) -> Any:
    """A model of any provider LangChain knows; ConfigError naming the package when it is missing."""
    try:
        if chat:
            from langchain.chat_models import init_chat_model

            return init_chat_model(model, model_provider=provider, temperature=0, **params)
        from langchain.embeddings import init_embeddings

        return init_embeddings(model, provider=provider)
    except ImportError as e:
        raise ConfigError(
            f"the LangChain integration for provider {provider!r} is not installed: {e}",
            f"pip install langchain-{provider.split('_')[0]}, or set WORKBENCH_LLM_PROVIDER=openai",
        ) from e
    except ValueError as e:
        raise ConfigError(
            f"LangChain does not know the provider {provider!r}: {e}",
            "use openai (any OpenAI-compatible server) or a provider that init_chat_model lists",
        ) from e
