"""A draft semantic model from the stored profiles of registered tables, and the active-model switch.

Why a draft and not a finished model: names, synonyms and the right aggregation of a column
are domain knowledge. The draft gets the mechanical part right (which table is the fact,
how it joins its dimensions, which columns are measures, time grains, vocabularies) in the
same YAML shape as ``retail.yaml``; the user edits it and activates it with
``workbench model use``. Rules:

- the *fact* is the table that references the most other tables (ties: most rows);
- joins are candidate joins from the profile whose two columns have the same name (the
  model's ``JoinDef`` joins on one shared column name; others are listed as comments);
- *measures*: numeric fact columns that are not keys or time parts; amounts are summed,
  prices/rates/percentages/scores averaged; plus a row count per table;
- *dimensions*: time grains from the fact's date (date, week, month, quarter, year), and
  text columns of up to :data:`MAX_DIMENSION_VALUES` values (their values become the
  vocabulary), name-like columns of dimension tables without a vocabulary.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from workbench.config import Settings
from workbench.errors import ConfigError, NotFoundError
from workbench.semantic.model import SemanticModel

#: text columns with at most this many distinct values become vocabulary dimensions
MAX_DIMENSION_VALUES = 50
ACTIVE_FILE = "active_model"
_AVERAGED = re.compile(r"(price|rate|pct|percent|ratio|score|age|discount|margin|avg|average|mean|temperature)")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "UTINYINT")


def _is_numeric(t: str) -> bool:
    return t.upper().startswith(_NUMERIC)


def _is_date(t: str) -> bool:
    return t.upper().startswith(("DATE", "TIMESTAMP"))


def _is_text(t: str) -> bool:
    return t.upper().startswith(("VARCHAR", "STRING", "TEXT"))


def _words(name: str) -> str:
    return name.replace("_", " ").strip()


def _plural(word: str) -> str:
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy", "uy")):
        return word[:-1] + "ies"
    return word if word.endswith("s") else word + "s"


def _col_sql(name: str) -> str:
    from sqlglot import exp

    return exp.column(name).sql(dialect="duckdb")


def choose_fact(profiles: dict[str, dict[str, Any]]) -> str:
    def score(t: str) -> tuple[int, int]:
        refs = {j["right"] for j in profiles[t].get("joins", []) if j["left"] == t and j["right"] in profiles}
        return len(refs), int(profiles[t]["rows"])

    return max(sorted(profiles), key=score)


def draft_model(profiles: dict[str, dict[str, Any]], name: str = "draft") -> dict[str, Any]:
    """The model as a plain dict (``yaml.safe_dump`` it); validated by :class:`SemanticModel`."""
    if not profiles:
        raise NotFoundError("no registered tables to draft a model from", "run `workbench register NAME URL` first")
    fact = choose_fact(profiles)
    fp = profiles[fact]
    fcols = {c["name"]: c for c in fp["columns"]}
    joins: list[dict[str, str]] = []
    other_joins: list[dict[str, Any]] = []
    for j in fp.get("joins", []):
        if j["left"] != fact or j["right"] not in profiles:
            continue
        if j["left_column"] == j["right_column"] and j["right"] not in {x["right"] for x in joins}:
            joins.append({"left": fact, "right": j["right"], "column": j["left_column"]})
        else:
            other_joins.append(j)
    tables: dict[str, Any] = {}
    used_alias: set[str] = set()
    for t in [fact, *[j["right"] for j in joins]]:
        alias = _alias(t, used_alias)
        entry: dict[str, Any] = {"alias": alias}
        if profiles[t].get("candidate_keys") and t != fact:
            entry["key"] = next((j["column"] for j in joins if j["right"] == t), profiles[t]["candidate_keys"][0])
        if profiles[t].get("partition_columns"):
            entry["partitions"] = list(profiles[t]["partition_columns"])
        tables[t] = entry

    key_cols = {j["column"] for j in joins} | set(fp.get("candidate_keys", []))
    date_col = _date_column(fp)
    has_ym = "year" in fcols and "month" in fcols
    time_cols = {date_col, "year", "month"} if date_col else {"year", "month"}

    metrics: dict[str, Any] = {
        f"{fact}_count": {
            "sql": "COUNT(*)",
            "format": "count",
            "description": f"rows of {fact}",
            "synonyms": [f"number of {_words(fact)}", f"{_words(fact)} count", f"how many {_words(fact)}", "count"],
        }
    }
    for c in fp["columns"]:
        n = c["name"]
        if not _is_numeric(c["type"]) or n in key_cols or n in time_cols or n.endswith("_id"):
            continue
        words = _words(n)
        if _AVERAGED.search(n.lower()):
            metrics[f"average_{n}"] = {
                "sql": f"AVG({_col_sql(n)})",
                "format": "number",
                "synonyms": [f"average {words}", f"avg {words}", f"mean {words}", words],
            }
        else:
            metrics[n] = {
                "sql": f"SUM({_col_sql(n)})",
                "format": "number",
                "synonyms": [f"total {words}", _plural(words)] if _plural(words) != words else [f"total {words}"],
            }
            metrics[f"average_{n}"] = {
                "sql": f"AVG({_col_sql(n)})",
                "format": "number",
                "synonyms": [f"average {words}", f"avg {words}", f"{words} per {_words(fact).rstrip('s')}"],
            }
    for t in tables:
        if t != fact:
            metrics[f"{t}_count"] = {
                "sql": "COUNT(*)",
                "table": t,
                "format": "count",
                "synonyms": [f"number of {_words(t)}", f"{_words(t)} count", f"how many {_words(t)}"],
            }

    dimensions: dict[str, Any] = {}
    if date_col:
        dimensions["date"] = {
            "column": date_col,
            "kind": "time",
            "synonyms": ["day", "daily", "days", _words(date_col)],
        }
        if has_ym:
            dimensions["week"] = {"sql": f"WEEK({_col_sql(date_col)})", "with": ["year"], "kind": "time",
                                  "synonyms": ["weekly", "weeks"]}  # fmt: skip
    if has_ym:
        dimensions["month"] = {"column": "month", "with": ["year"], "kind": "time", "synonyms": ["monthly", "months"]}
        dimensions["quarter"] = {
            "sql": "CASE WHEN month <= 3 THEN 1 WHEN month <= 6 THEN 2 WHEN month <= 9 THEN 3 ELSE 4 END",
            "with": ["year"],
            "kind": "time",
            "synonyms": ["quarterly", "quarters"],
        }
        dimensions["year"] = {"column": "year", "kind": "time", "synonyms": ["yearly", "annual", "years"]}
    vocab_values: dict[str, list[Any]] = {}
    for t in tables:
        for c in profiles[t]["columns"]:
            n = c["name"]
            if not _is_text(c["type"]) or n in key_cols or (n in profiles[t].get("candidate_keys", []) and t == fact):
                continue
            low = c.get("values") is not None and len(c["values"]) <= MAX_DIMENSION_VALUES
            name_like = t != fact and (n.endswith("name") or n in profiles[t].get("candidate_keys", []))
            if not (low or name_like) or n.endswith("_id"):
                continue
            dim_name = n if n not in dimensions and n not in metrics else f"{t}_{n}"
            if n.endswith("_name") and n[: -len("_name")] not in dimensions and n[: -len("_name")] not in metrics:
                dim_name = n[: -len("_name")]
            words = _words(dim_name)
            dim: dict[str, Any] = {"column": n, "synonyms": sorted({words, _plural(words), _words(n)})}
            if t != fact:
                dim = {"table": t, **dim}
            if low:
                dim["vocabulary"] = True
                vocab_values[dim_name] = c["values"]
            dimensions[dim_name] = dim
    model: dict[str, Any] = {
        "name": name,
        "fact": fact,
        "tables": tables,
        "joins": joins,
        "metrics": metrics,
        "dimensions": dimensions,
    }
    if date_col and has_ym:
        model["time"] = {"date": date_col, "year": "year", "month": "month"}
    notes = []
    if not (date_col and has_ym):
        notes.append(
            f"{fact} has no date column with year and month columns beside it: time filters are unavailable "
            "(register a copy with --partition-by year,month to derive them from the date)"
        )
    for j in other_joins:
        notes.append(
            f"candidate join {j['left']}.{j['left_column']} -> {j['right']}.{j['right_column']} "
            f"(value overlap {j['overlap']:.0%}) has different column names; the model joins on one shared name"
        )
    model["_notes"] = notes
    model["_vocabulary"] = vocab_values
    SemanticModel.model_validate({k: v for k, v in model.items() if not k.startswith("_")})
    return model


def _alias(table: str, used: set[str]) -> str:
    base = "".join(w[0] for w in table.split("_") if w) or "t"
    alias, i = base, 1
    while alias in used:
        i += 1
        alias = f"{base}{i}"
    used.add(alias)
    return alias


def _date_column(profile: dict[str, Any]) -> str | None:
    dates = [c["name"] for c in profile["columns"] if _is_date(c["type"])]
    if not dates:
        return None
    named = [d for d in dates if "date" in d.lower() or d.lower() in ("day", "ts", "timestamp")]
    return (named or dates)[0]


def to_yaml(model: dict[str, Any], tables: list[str]) -> str:
    """The YAML text: a header of notes and vocabularies as comments, then the model."""
    body = {k: v for k, v in model.items() if not k.startswith("_")}
    lines = [
        f"# Draft semantic model from the profiles of: {', '.join(tables)}",
        "# Edit names, synonyms and aggregations, then activate it: workbench model use <this file>",
    ]
    for note in model.get("_notes", []):
        lines.append(f"# note: {note}")
    for dim, values in model.get("_vocabulary", {}).items():
        shown = ", ".join(str(v) for v in values[:12]) + (" ..." if len(values) > 12 else "")
        lines.append(f"# values of {dim}: {shown}")
    return "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=110)


def draft_yaml(lake: Any, tables: list[str] | None = None, name: str = "draft") -> str:
    """Profiles (stored, or taken now) of ``tables`` -> YAML text of a draft model."""
    from workbench.lake.profile import load_profiles

    profiles = load_profiles(lake, tables or None)
    return to_yaml(draft_model(profiles, name), sorted(profiles))


# --- the active model -------------------------------------------------------------------------------
def active_model_path(settings: Settings) -> str | None:
    """The model chosen with ``workbench model use`` (a path stored in the workbench home), if any."""
    home = getattr(settings, "home", None)  # partial settings objects (tests, embedding apps) have none
    if home is None:
        return None
    marker = Path(home).expanduser() / ACTIVE_FILE  # not home_path, which creates the folder
    try:
        text = marker.read_text().strip()
    except OSError:
        return None
    return text or None


def use_model(path: str | Path, settings: Settings, known_tables: set[str] | None = None) -> SemanticModel:
    """Validate ``path`` (and that its tables exist) and make it the active model; ``None`` resets."""
    from workbench.semantic.model import _load_cached

    resolved = Path(path).expanduser().resolve()
    model = SemanticModel.load(resolved)
    if known_tables is not None:
        missing = sorted(set(model.tables) - known_tables)
        if missing:
            raise ConfigError(
                f"the model names table {missing[0]!r}, which is neither a lake table nor registered",
                "register it first (`workbench register`) or fix `tables:` in the model",
            )
    settings.home_path.mkdir(parents=True, exist_ok=True)
    (settings.home_path / ACTIVE_FILE).write_text(str(resolved) + "\n")
    _load_cached.cache_clear()
    return model


def reset_model(settings: Settings) -> None:
    """Back to the ``semantic_model`` setting or the packaged retail model."""
    (settings.home_path / ACTIVE_FILE).unlink(missing_ok=True)
