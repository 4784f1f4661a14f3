"""The words of the semantic model: every phrase that names a metric, a dimension or a value.

Built from the model's names and synonyms and from the value vocabulary read from the lake,
so the offline parser has no per-question rules: a new metric, synonym or category in the
data is understood as soon as it is in the model or the lake. Matching is on normalised
token sequences (lower case, ``&`` = ``and``, hyphens as spaces), longest phrase first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from workbench.semantic.model import SemanticModel

Kind = Literal["metric", "dimension", "value"]


def normalise(text: str) -> str:
    """Lower case, ``&`` -> ``and``, punctuation to spaces (keeps ``%``, ``.`` in numbers)."""
    t = text.lower().replace("&", " and ").replace("’", "'")
    t = re.sub(r"(\d)%", r"\1 %", t)
    t = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", t)
    t = re.sub(r"[^\w%.' ]+", " ", t.replace("_", " ").replace("-", " "))
    t = t.replace("'s ", " ").replace("'", " ")
    return re.sub(r"\s+", " ", t).strip()


def plural(word: str) -> str:
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy", "uy")):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


@dataclass(frozen=True)
class Entry:
    """One phrase of the lexicon."""

    tokens: tuple[str, ...]
    kind: Kind
    name: str
    #: the value as stored in the data (for kind == "value")
    value: str | None = None


@dataclass
class Hit:
    """An entry found at token positions ``start:end``; values may absorb their dimension word."""

    start: int
    end: int
    entries: list[Entry] = field(default_factory=list)

    @property
    def kind(self) -> Kind:
        return self.entries[0].kind


class Lexicon:
    """Phrase index over a semantic model and its value vocabulary."""

    def __init__(self, model: SemanticModel, vocabulary: Mapping[str, Sequence[str]]) -> None:
        self.model = model
        self.vocabulary = {k: list(v) for k, v in vocabulary.items()}
        self.index: dict[tuple[str, ...], list[Entry]] = {}
        for name, m in model.metrics.items():
            for phrase in [name.replace("_", " "), *m.synonyms]:
                self._add(phrase, "metric", name)
                # "per order", "per unit": the singular of a plural count word names the same metric
                tokens = normalise(phrase).split()
                if len(tokens) == 1 and tokens[0].endswith("s") and not tokens[0].endswith("ss") and len(tokens[0]) > 4:
                    self._add(tokens[0][:-1], "metric", name)
        for name, d in model.dimensions.items():
            for phrase in [name.replace("_", " "), *d.synonyms]:
                self._add(phrase, "dimension", name, with_plural=True)
        for dim, values in self.vocabulary.items():
            if dim not in model.dimensions:
                continue
            for v in values:
                if v is None or str(v).strip() == "":
                    continue
                text = str(v)
                self._add(text, "value", dim, value=text, with_plural=not text.lower().endswith("s"))
        self.max_len = max((len(k) for k in self.index), default=1)

    def _add(self, phrase: str, kind: Kind, name: str, value: str | None = None, with_plural: bool = False) -> None:
        tokens = tuple(normalise(phrase).split())
        if not tokens:
            return
        variants = {tokens}
        if with_plural:
            variants.add((*tokens[:-1], plural(tokens[-1])))
        for t in variants:
            entry = Entry(t, kind, name, value)
            bucket = self.index.setdefault(t, [])
            if entry not in bucket:
                bucket.append(entry)

    def scan(self, tokens: Sequence[str], blocked: set[int]) -> list[Hit]:
        """Left-to-right longest matches over ``tokens``, skipping positions in ``blocked``."""
        hits: list[Hit] = []
        i = 0
        while i < len(tokens):
            if i in blocked:
                i += 1
                continue
            for n in range(min(self.max_len, len(tokens) - i), 0, -1):
                span = range(i, i + n)
                if any(j in blocked for j in span):
                    continue
                entries = self.index.get(tuple(tokens[i : i + n]))
                if entries:
                    hits.append(Hit(i, i + n, list(entries)))
                    i += n
                    break
            else:
                i += 1
        return hits

    def all_phrases(self) -> list[str]:
        return [" ".join(k) for k in self.index]
