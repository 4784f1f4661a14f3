"""Retrieval grounding: summaries of the data, embedded into a FAISS index in the lake."""

from __future__ import annotations

from workbench.assistant.retrieval.embedder import Embedder, HashingEmbedder, OpenAIEmbedder, get_embedder
from workbench.assistant.retrieval.index import Source, SummaryIndex
from workbench.assistant.retrieval.summaries import build_summaries, generate_summaries

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "OpenAIEmbedder",
    "Source",
    "SummaryIndex",
    "build_summaries",
    "generate_summaries",
    "get_embedder",
]
