"""LLM access through LangChain (OpenAI-compatible by default): one client, robust output parsing, a price table."""

from __future__ import annotations

from workbench.assistant.llm.client import ChatReply, LLMClient, Usage
from workbench.assistant.llm.parsing import extract_json, extract_sql
from workbench.assistant.llm.prices import cost_usd, price_table

__all__ = ["ChatReply", "LLMClient", "Usage", "cost_usd", "extract_json", "extract_sql", "price_table"]
