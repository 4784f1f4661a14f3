"""Observability: Prometheus metrics, the HTTP API of the served product, query recording.

``metrics`` holds the instruments and the ``observe_*`` functions the query paths call;
``recording`` adds the catalog query log and audit row to each observation; ``http`` exposes
``/metrics``, ``/healthz``, ``/api/sql`` and ``/api/ask`` as tornado handlers.
"""
