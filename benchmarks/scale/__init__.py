"""The 100 GB harness (``make bench-100gb``, ``benchmarks/bench_100gb.py``), in small modules.

- :mod:`.proc`: run a ``workbench`` command in a subprocess, timing it and sampling the peak
  RSS of its process tree; SIGKILL an ingest once it has written data files.
- :mod:`.land`: land the data in batches (generate one period, ingest it, refresh summaries,
  delete its CSV) with a free-disk guard, and the kill-and-rerun check.
- :mod:`.measure`: the seed's four queries, the dashboard's queries and the assistant.
- :mod:`.report`: the results file (JSON rewritten after every step) and its Markdown table.
"""
