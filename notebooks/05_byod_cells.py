# ruff: noqa: E402, B018
"""Code cells for notebooks/05_byod.ipynb ("Bring your own data"); the lead merges them into the notebook.

Each ``# %%`` block is one cell; ``# %% [markdown]`` blocks are text cells. Runs offline:
a small coffee-chain star schema is generated into a temporary folder first.
"""

# %% [markdown]
# # Bring your own data
# Register your own Parquet folders, Delta tables or CSV exports, look at their profile,
# draft a semantic model, and ask questions with the same planners, guard and policies as
# on the reference retail data. Parquet and Delta are read **in place** (nothing is copied;
# hive `key=value` folders become partitions that WHERE clauses prune); CSV is ingested
# (copied) with type inference, string clean-up and a quality report.

# %%
import tempfile
from pathlib import Path

from tests.data.star import write_star
from workbench.config import Settings
from workbench.lake.storage import Lake

work = Path(tempfile.mkdtemp(prefix="byod-"))
data = write_star(work / "coffee")  # orders/ (year=/month=), shops.parquet, drinks.parquet, members.csv
settings = Settings(lake=str(work / "lake"), home=str(work / "home"))
lake = Lake(settings=settings)
sorted(p.relative_to(data).as_posix() for p in data.rglob("*.*"))[:6]

# %% [markdown]
# ## Register
# Same as `workbench register NAME URL [--format] [--copy] [--partition-by]` on the command line.

# %%
from workbench.lake.register import register, registrations

register("coffee_shops", str(data / "shops.parquet"), lake=lake)
register("drinks", str(data / "drinks.parquet"), lake=lake)
members = register("members", str(data / "members.csv"), lake=lake)  # CSV: copied and cleaned
orders = register("orders", str(data / "orders"), lake=lake)  # hive folders: read in place
print(orders.mode, orders.files, "files,", orders.rows, "rows, partitions", orders.partition_columns)
print("members quality:", members.details["quality"]["rows_written"], "rows;", members.details["renamed_columns"])
[(r.name, r.mode, r.origin_url) for r in registrations(lake=lake)]

# %% [markdown]
# ## Profile: types, null rates, values, keys and candidate joins (stored in the catalog)

# %%
import pandas as pd

from workbench.lake.profile import load_profiles

profiles = load_profiles(lake)
pd.DataFrame(profiles["members"]["columns"])[["name", "type", "null_rate", "distinct", "min", "max"]]

# %%
pd.DataFrame(profiles["orders"]["joins"])

# %% [markdown]
# ## Draft a semantic model, edit it, activate it
# `workbench model draft > model.yaml`, edit, then `workbench model use model.yaml`.

# %%
from workbench.semantic.draft import draft_yaml, use_model

text = draft_yaml(lake)
print(text[:1200])
model_file = work / "model.yaml"
model_file.write_text(text)
use_model(model_file, settings)

# %% [markdown]
# ## SQL and questions over the registered tables
# Partition pruning applies: a query on one month reads one file of `orders`.

# %%
from workbench.session import Workbench

wb = Workbench(lake, settings)
r = wb.sql("SELECT payment, SUM(amount) AS amount FROM orders WHERE year = 2024 AND month = 3 GROUP BY 1")
print(r.engine, r.files_scanned, "files scanned")
r.df

# %%
for q in ["amount by city in 2024", "cups by loyalty level", "top 3 drinks by amount", "monthly amount in 2023"]:
    a = wb.ask(q)
    print(q, "->", a.answer)

# %%
wb.close()
