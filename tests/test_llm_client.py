"""The LLM layer against the scripted OpenAI-compatible server: parsing, retries, usage, cost."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.llm_server import Reply, ScriptedLLM
from workbench.assistant.llm import LLMClient, cost_usd, extract_json, extract_sql
from workbench.config import get_settings
from workbench.errors import ConfigError, PlanningError, ServiceUnavailable

GOOD = {"metrics": ["revenue"], "dimensions": ["region"]}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(GOOD),
        "```json\n" + json.dumps(GOOD) + "\n```",
        "Sure! Here is the query:\n```\n" + json.dumps(GOOD, indent=2) + "\n```\nHope this helps.",
        "The plan is " + json.dumps(GOOD) + " as requested.",
        "Note {not json} then " + json.dumps(GOOD),
    ],
)
def test_extract_json_finds_the_object(text: str) -> None:
    assert extract_json(text) == GOOD


def test_extract_json_refuses_prose() -> None:
    with pytest.raises(PlanningError):
        extract_json("I cannot help with that.")


def test_extract_json_respects_braces_in_strings() -> None:
    assert extract_json('x {"a": "}{", "b": 1} y') == {"a": "}{", "b": 1}


def test_extract_sql() -> None:
    assert extract_sql("```sql\nSELECT 1;\n```") == "SELECT 1"
    assert extract_sql("WITH t AS (SELECT 1) SELECT * FROM t") == "WITH t AS (SELECT 1) SELECT * FROM t"
    assert extract_sql("no sql here") is None


def test_cost_table_and_override(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cost_usd("gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(0.15)
    assert cost_usd("my-local-llama", 10_000, 10_000) == 0.0
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"my-local-llama": [1.0, 2.0]}))
    monkeypatch.setenv("WORKBENCH_LLM_PRICES", str(prices))
    assert cost_usd("my-local-llama", 1_000_000, 1_000_000) == pytest.approx(3.0)


def test_client_needs_configuration() -> None:
    with pytest.raises(ConfigError):
        LLMClient(get_settings())


def test_chat_records_usage(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.queue(Reply(content="hello", prompt_tokens=100, completion_tokens=7))
    reply = LLMClient().chat([{"role": "user", "content": "hi"}], "gpt-4o-mini")
    assert reply.text == "hello"
    assert reply.usage.prompt_tokens == 100 and reply.usage.completion_tokens == 7
    assert reply.usage.cost_usd == pytest.approx(cost_usd("gpt-4o-mini", 100, 7))
    assert scripted_llm.chat_requests[0]["model"] == "gpt-4o-mini"


def test_500_is_retried(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.queue(Reply(status=500), Reply(content="ok"))
    reply = LLMClient().chat([{"role": "user", "content": "hi"}], "test-small")
    assert reply.text == "ok" and reply.attempts == 2


def test_timeouts_exhaust_retries(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.queue(Reply(sleep_s=1.6, content="late"), Reply(sleep_s=1.6, content="late"))
    with pytest.raises(ServiceUnavailable) as info:
        LLMClient().chat([{"role": "user", "content": "hi"}], "test-small")
    assert "timed out" in info.value.message
    assert len(scripted_llm.chat_requests) == 2  # 1 try + llm_max_retries=1


def test_budget_stops_spending(scripted_llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.config import reset_settings

    monkeypatch.setenv("WORKBENCH_LLM_DAILY_BUDGET_USD", "0.000001")
    reset_settings()
    scripted_llm.queue(Reply(content="a", prompt_tokens=10_000), Reply(content="b"))
    client = LLMClient()
    client.chat([{"role": "user", "content": "hi"}], "gpt-4o")
    with pytest.raises(ServiceUnavailable, match="budget"):
        client.chat([{"role": "user", "content": "hi"}], "gpt-4o")


def test_embeddings_through_the_server(scripted_llm: ScriptedLLM) -> None:
    vectors, usage = LLMClient().embed(["a b", "c"], "text-embedding-3-small")
    assert len(vectors) == 2 and len(vectors[0]) == 32
    assert usage.calls == 1


def test_plans_are_asked_for_as_structured_output(scripted_llm: ScriptedLLM) -> None:
    """The planner sends PlanReply's JSON schema; a reply that fits is parsed, one that does not stays text."""
    from workbench.assistant.planners.llm import PlanReply

    plan = {"semantic_query": {"metrics": ["revenue"], "dimensions": ["region"]}, "confidence": 0.9}
    scripted_llm.queue(plan, "```json\n" + json.dumps({"sql": "SELECT 1"}) + "\n```")
    client = LLMClient()
    fits = client.chat([{"role": "user", "content": "revenue by region"}], "test-small", schema=PlanReply)
    assert isinstance(fits.parsed, PlanReply) and fits.parsed.semantic_query is not None
    assert fits.parsed.semantic_query.metrics == ["revenue"] and fits.usage.prompt_tokens == 120
    fenced = client.chat([{"role": "user", "content": "one"}], "test-small", schema=PlanReply)
    assert fenced.parsed is None and extract_json(fenced.text) == {"sql": "SELECT 1"}
    sent = scripted_llm.chat_requests[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "PlanReply"
    assert "semantic_query" in sent["json_schema"]["schema"]["properties"]


def test_an_endpoint_refusing_json_schema_gets_json_object_with_the_schema(
    scripted_llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """llama.cpp's server answers json_schema with a 500; the client downgrades once and keeps it."""
    from workbench.assistant.planners.llm import PlanReply
    from workbench.config import reset_settings

    monkeypatch.setenv("WORKBENCH_LLM_MAX_RETRIES", "0")
    reset_settings()
    refusal = "('body', 'response_format', 'type'): Input should be 'text' or 'json_object'"
    plan = {"semantic_query": {"metrics": ["revenue"], "dimensions": ["region"]}, "confidence": 0.9}
    scripted_llm.queue(Reply(status=500, error=refusal), plan, plan)
    client = LLMClient()
    for _ in range(2):
        reply = client.chat([{"role": "user", "content": "revenue by region"}], "local", schema=PlanReply)
        assert isinstance(reply.parsed, PlanReply) and reply.parsed.semantic_query is not None
    sent = [r["response_format"] for r in scripted_llm.chat_requests]
    assert [f["type"] for f in sent] == ["json_schema", "json_object", "json_object"]
    assert "semantic_query" in sent[1]["schema"]["properties"]
    # any other server error is not a format problem: it surfaces, no downgrade
    scripted_llm.queue(Reply(status=500))
    with pytest.raises(ServiceUnavailable):
        LLMClient().chat([{"role": "user", "content": "x"}], "local", schema=PlanReply)
    assert scripted_llm.chat_requests[-1]["response_format"]["type"] == "json_schema"


def test_another_provider_without_its_package_is_a_config_error(
    scripted_llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.config import reset_settings

    monkeypatch.setenv("WORKBENCH_LLM_PROVIDER", "no_such_provider")
    reset_settings()
    with pytest.raises(ConfigError, match="no_such_provider"):
        LLMClient().chat([{"role": "user", "content": "hi"}], "some-model")


def test_another_langchain_provider_by_configuration(
    scripted_llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WORKBENCH_LLM_PROVIDER=azure_openai goes through init_chat_model (AzureChatOpenAI), usage and cost kept."""
    from workbench.config import reset_settings

    endpoint = scripted_llm.url.removesuffix("/v1")
    monkeypatch.setenv("WORKBENCH_LLM_PROVIDER", "azure_openai")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    monkeypatch.delenv("OPENAI_BASE_URL")
    reset_settings()
    scripted_llm.queue(Reply(content="from azure", prompt_tokens=200, completion_tokens=10))
    reply = LLMClient().chat([{"role": "user", "content": "hi"}], "gpt-4o-mini")
    assert reply.text == "from azure" and reply.usage.prompt_tokens == 200
    assert reply.usage.cost_usd == pytest.approx(cost_usd("gpt-4o-mini", 200, 10))
    request = scripted_llm.chat_requests[0]
    assert request["_path"] == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert request["_query"] == "api-version=2024-10-21"
    from workbench.assistant.planners.llm import PlanReply

    scripted_llm.queue("```json\n" + json.dumps({"sql": "SELECT 1"}) + "\n```")  # does not fit: stays text
    unfit = LLMClient().chat([{"role": "user", "content": "one"}], "gpt-4o-mini", schema=PlanReply)
    assert unfit.parsed is None and extract_json(unfit.text) == {"sql": "SELECT 1"}
    assert scripted_llm.chat_requests[1]["response_format"]["type"] == "json_schema"


def test_a_compatible_server_gets_the_completion_cap_as_max_tokens(scripted_llm: ScriptedLLM) -> None:
    """llama.cpp's server ignores max_completion_tokens: the cap is also sent as max_tokens."""
    scripted_llm.queue("ok")
    LLMClient().chat([{"role": "user", "content": "hi"}], "local")
    sent = scripted_llm.chat_requests[-1]
    assert sent["max_tokens"] == get_settings().llm_max_tokens
    assert sent["max_completion_tokens"] == get_settings().llm_max_tokens
