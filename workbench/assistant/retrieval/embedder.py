"""Embedders: one interface, a LangChain-model one and a local one that needs no download.

The local :class:`HashingEmbedder` is the default: word unigrams, word bigrams and character
n-grams hashed into a fixed number of signed buckets, log-scaled and L2-normalised (numpy
only). It has no vocabulary to fit, so an index built on one machine is searchable on another,
and it matches the exact names summaries are about ("Electronics", "Q3 2023", "North"), which
is what grounding needs most.
"""

from __future__ import annotations

import itertools
import re
import zlib
from typing import Protocol, runtime_checkable

import numpy as np

from workbench.config import Settings, get_settings

_WORD = re.compile(r"[a-z0-9]+(?:[.'&-][a-z0-9]+)*")


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32)


class HashingEmbedder:
    """Hashed word + character n-gram features; deterministic, offline, fast enough for 10^4 texts."""

    def __init__(self, dim: int = 1024, char_ngrams: tuple[int, ...] = (3, 4)) -> None:
        self.dim = dim
        self.char_ngrams = char_ngrams
        self.name = f"hashing-{dim}"

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        feats = [f"w:{w}" for w in words]
        feats += [f"b:{a}_{b}" for a, b in itertools.pairwise(words)]
        for w in words:
            padded = f"<{w}>"
            for n in self.char_ngrams:
                feats += [f"c:{padded[i : i + n]}" for i in range(max(1, len(padded) - n + 1))]
        return feats

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = zlib.crc32(feat.encode())
                weight = 2.0 if feat.startswith(("w:", "b:")) else 1.0
                out[row, h % self.dim] += weight if (h >> 31) & 1 else -weight
        out = np.sign(out) * np.log1p(np.abs(out))
        return _normalise(out)


class OpenAIEmbedder:
    """Embeddings from the configured provider's LangChain ``Embeddings`` (OpenAI-compatible by default).

    The name records the provider (``openai:text-embedding-3-small``), so an index is searched
    with the model it was built with.
    """

    def __init__(self, model: str, settings: Settings | None = None) -> None:
        from workbench.assistant.llm.client import LLMClient

        self.settings = settings or get_settings()
        self.model = model
        self.name = f"{self.settings.llm_provider}:{model}"
        self._client = LLMClient(self.settings)
        self.dim = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), 256):
            batch, _ = self._client.embed(texts[start : start + 256], self.model)
            vectors.extend(batch)
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
        self.dim = matrix.shape[1]
        return _normalise(matrix)


def embedding_model(settings: Settings) -> str | None:
    """The remote embedding model, when one is configured (``WORKBENCH_EMBEDDING_MODEL``)."""
    import os

    return getattr(settings, "embedding_model", None) or os.environ.get("WORKBENCH_EMBEDDING_MODEL")


def get_embedder(settings: Settings | None = None, name: str | None = None) -> Embedder:
    """The embedder chosen by configuration, or the one an existing index was built with."""
    settings = settings or get_settings()
    if name is not None:
        if name.startswith("hashing-"):
            return HashingEmbedder(dim=int(name.split("-", 1)[1]))
        provider, _, model_name = name.partition(":")
        if model_name:
            return OpenAIEmbedder(model_name, settings.model_copy(update={"llm_provider": provider}))
    model = embedding_model(settings)
    if settings.llm_configured and model:
        return OpenAIEmbedder(model, settings)
    return HashingEmbedder()
