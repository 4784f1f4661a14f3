"""The LLM writes an answer's narrative from the result table and the cited summaries.

Kept behind :class:`~workbench.assistant.llm.client.LLMClient` (one ``chat`` call) so moving
to another chat interface stays local. The text it returns is *not* trusted: the caller checks
every number in it against the result and the cited summaries
(:func:`workbench.assistant.narrative.unsupported_numbers`) and shows the template otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from workbench.assistant.llm.client import ChatReply, LLMClient

#: rows of the result sent to the model (a narrative summarises; the table holds the rest)
MAX_ROWS = 30

_SYSTEM = (
    "You write the two or three sentence answer an analyst would give. Lead with the answer, name the "
    "period, and use ONLY numbers that appear in the result table or the summaries given as data; never "
    "compute new figures and never mention row counts, SQL or source ids. Plain text, no markdown."
)


def narrative_messages(
    question: str, interpretation: str, df: pd.DataFrame, summaries: Sequence[str]
) -> list[dict[str, str]]:
    """The prompt: the question and what was answered, then the data (delimited as untrusted)."""
    table = df.head(MAX_ROWS).to_csv(index=False)
    facts = "\n".join(f"- {s}" for s in summaries)
    body = f"Result table (CSV):\n{table}" + (f"\nSummaries:\n{facts}" if facts else "")
    body = body.replace("</data>", "</ data>")
    return [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": f'<data untrusted="true">\n{body}\n</data>'},
        {"role": "user", "content": f"Question: {question}\nWhat was answered: {interpretation}"},
    ]


def write_narrative(
    client: LLMClient, model: str, question: str, interpretation: str, df: pd.DataFrame, summaries: Sequence[str]
) -> ChatReply:
    """One chat call; raises ServiceUnavailable like every other call (the caller keeps the template)."""
    return client.chat(narrative_messages(question, interpretation, df, summaries), model)
