"""Typed settings: ``workbench.yaml`` plus ``WORKBENCH_*`` environment variables.

Settings are data. Every field is documented here and nowhere else; precedence is
explicit keyword arguments > environment variables > ``workbench.yaml`` (found in the
current directory, or at ``WORKBENCH_CONFIG``) > defaults. Secrets are read from the
environment (``SecretStr``) and never written back.

The embedded defaults make a laptop work without any file: a local lake in ``./lake``, a
SQLite catalog and an on-disk cache under ``./.workbench``, a LocalCluster, no LLM.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from workbench.errors import ConfigError


class S3Settings(BaseModel):
    """Object storage connection, used for every ``s3://`` URL (lake, landing, registered data)."""

    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (moto, MinIO); None = AWS")
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    allow_http: bool = Field(False, description="needed for http:// endpoints such as a local moto server")
    timeout_s: float = Field(30.0, description="per-request read timeout")
    connect_timeout_s: float = Field(5.0, description="connection timeout")
    max_attempts: int = Field(4, description="attempts per request (retries with backoff) before a clear error")


class RollupSpec(BaseModel):
    """A pre-aggregated table over ``sales``: grouping columns and summed measures."""

    name: str
    dimensions: list[str]
    measures: list[str] = ["revenue", "profit", "cost", "quantity", "discount"]
    grain: Literal["day", "month"] = "day"
    min_max: list[str] = Field(default_factory=list, description="measures whose MIN/MAX are kept too")


def _default_rollups() -> list[RollupSpec]:
    return [
        RollupSpec(name="daily_region_category_channel", dimensions=["date", "region", "category", "channel"]),
        # the monthly twin answers year/quarter/month questions from ~30x fewer rows than the daily one
        RollupSpec(
            name="monthly_region_category_channel",
            dimensions=["year", "month", "region", "category", "channel"],
            grain="month",
        ),
        # by store and by product with every dashboard filter column (region, category, channel),
        # so the dashboard's top-N lists stay on rollups whatever the filters: at 100M rows about
        # 100k and 1.1M rows (region is the store's, category the product's: no extra rows there)
        RollupSpec(
            name="monthly_store",
            dimensions=["year", "month", "region", "category", "channel", "store_id"],
            grain="month",
        ),
        RollupSpec(
            name="monthly_product",
            dimensions=["year", "month", "region", "category", "channel", "product_id"],
            grain="month",
        ),
        # product x store x month: any product attribute by any store attribute (a join to both
        # dimension tables) re-aggregates from ~6.7M rows instead of ~99M at 100M rows
        RollupSpec(
            name="monthly_product_store",
            dimensions=["year", "month", "region", "category", "product_id", "store_id"],
            grain="month",
        ),
    ]


class OidcSettings(BaseModel):
    """An OpenID Connect provider (Keycloak, Entra ID, Okta, Auth0, Dex, ...) for the dashboard and the API.

    The dashboard signs viewers in with the authorization-code flow (Panel's generic OAuth
    provider); the API accepts the provider's access tokens (JWTs checked against its JWKS,
    opaque ones against its userinfo endpoint). Endpoints come from the issuer's discovery
    document, so only the issuer URL is needed.
    """

    issuer: str | None = Field(None, description="issuer URL; its /.well-known/openid-configuration is read")
    client_id: str | None = Field(None, description="the dashboard's client id at the provider")
    client_secret: SecretStr | None = Field(None, description="client secret (WORKBENCH_AUTH__OIDC__CLIENT_SECRET)")
    username_claim: str = Field("preferred_username", description="claim naming the user in policies.yaml")
    audience: str | None = Field(None, description="required `aud` of JWT access tokens; None = not checked")
    scope: str = Field("openid profile email", description="scopes asked for at sign-in")
    redirect_uri: str | None = Field(None, description="dashboard URL registered at the provider; None = this host")


class AuthSettings(BaseModel):
    """Who may use the served dashboard and HTTP API (``workbench serve`` / ``workbench api``)."""

    users_file: str | None = Field(
        None, description="local users file (salted scrypt hashes; `workbench users add`); default `home`/users.json"
    )
    oidc: OidcSettings = OidcSettings()
    required: bool | None = Field(
        None,
        description="None = required when a users file, an OIDC issuer or an API token exists; "
        "False = no authentication (loopback only)",
    )
    session_hours: float = Field(8.0, description="a dashboard login (its signed cookie) expires after this")
    token_days: float | None = Field(90.0, description="default lifetime of `workbench token create`; None = none")
    login_attempts: int = Field(5, description="failed logins allowed per user and per client address per window")
    login_window_s: float = Field(300.0, description="window of the login rate limit")
    cookie_secret: SecretStr | None = Field(
        None, description="signs dashboard session cookies; default: generated once into `home`"
    )


class Settings(BaseSettings):
    """All runtime configuration of the workbench."""

    model_config = SettingsConfigDict(
        env_prefix="WORKBENCH_",
        env_nested_delimiter="__",
        extra="ignore",
        yaml_file="workbench.yaml",
    )

    # --- storage -------------------------------------------------------------------------
    lake: str = Field("lake", description="lake URL: a local folder or s3://bucket/prefix")
    landing: str = Field("data/landing", description="where `workbench generate` writes by default")
    home: str = Field(".workbench", description="local state folder (catalog, cache, keys, reports)")
    s3: S3Settings = S3Settings()

    # --- catalog ------------------------------------------------------------------------------
    catalog_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite in `home`")

    # --- personal data ---------------------------------------------------------------------
    pii_key: SecretStr | None = Field(
        None, description="key of the keyed hash that tokenises personal fields; default: generated once into `home`"
    )

    # --- SQL -------------------------------------------------------------------------------
    row_limit: int = Field(100_000, description="rows returned at most by one query")
    timeout_s: float = Field(120.0, description="wall-clock limit of one query")
    duckdb_memory_limit: str = Field("4GB", description="DuckDB memory_limit (its default is 80% of RAM)")
    duckdb_threads: int | None = Field(None, description="DuckDB threads; None = all cores")
    engine: Literal["auto", "duckdb", "dask"] = "auto"

    # --- router --------------------------------------------------------------------------
    duckdb_max_bytes: int = Field(
        64 * 2**30, description="above this many estimated bytes scanned, auto routes to the Dask cluster"
    )
    rollups: list[RollupSpec] = Field(default_factory=_default_rollups)

    # --- cluster -------------------------------------------------------------------------
    scheduler: str | None = Field(None, description="address of an existing Dask scheduler")
    gateway_url: str | None = Field(None, description="dask-gateway URL (scale-out)")
    gateway_proxy_address: str | None = None
    gateway_auth: Literal["simple", "basic", "kerberos", "jupyterhub"] | None = None
    gateway_username: str | None = None
    gateway_password: SecretStr | None = None
    gateway_workers: int = 2
    n_workers: int = Field(2, description="LocalCluster workers")
    threads_per_worker: int = 1
    worker_memory: str = "4GB"
    dask_task_mb: int = Field(
        256,
        ge=1,
        description=(
            "Parquet MB one cluster task reads (compressed; ~3-5x that in memory when gathered); measured at "
            "100M rows on 2 workers, 256 MB took the simple aggregation from 1.34x to 1.09x of plain DuckDB"
        ),
    )

    dask_direct: bool = Field(
        True,
        description=(
            "a cluster query that is one round with a file group per worker goes straight to a DuckDB runner on "
            "each worker (a Dask actor) instead of through the scheduler as tasks: measured at 100M rows on 2 "
            "workers, the pruned aggregation went from 1.4x to 1.3x of plain DuckDB; off: every query is a task "
            "in the Dask dashboard's task stream"
        ),
    )

    # --- cache ---------------------------------------------------------------------------
    redis_url: str | None = Field(None, description="Redis result cache; default an on-disk cache in `home`")
    cache_ttl_s: int = 3600

    # --- assistant -------------------------------------------------------------------------
    llm_provider: str = Field(
        "openai",
        description="LangChain chat-model provider: openai (any OpenAI-compatible server, OPENAI_BASE_URL), or "
        "any init_chat_model provider such as anthropic, ollama, bedrock_converse, azure_openai (install its "
        "langchain-<provider> package; its own environment variables hold the keys)",
    )
    llm_model: str | None = Field(None, description="model for simple questions (needs OPENAI_API_KEY)")
    llm_model_strong: str | None = Field(None, description="model for complex questions; default llm_model")
    llm_timeout_s: float = 30.0
    llm_max_tokens: int = Field(
        1024, description="completion cap per call: a plan or a narrative is short; a looping model is cut off"
    )
    llm_max_retries: int = 2
    llm_daily_budget_usd: float = 5.0
    llm_send_values: bool = Field(True, description="False: never send row values to the LLM")
    llm_narrative: bool = Field(
        True,
        description="with an LLM configured, the model writes the answer's narrative; one whose numbers are "
        "not in the result or the cited summaries is replaced by the template",
    )
    repair_attempts: int = 2
    semantic_model: str | None = Field(None, description="semantic model YAML; default the packaged retail model")
    embedding_model: str | None = Field(
        None, description="OpenAI-compatible embedding model; None = the local hashing embedder (no download)"
    )
    llm_prices: str | None = Field(None, description="JSON file of per-model prices (USD per 1M tokens)")

    # --- trust -----------------------------------------------------------------------------
    policies: str | None = Field(None, description="policies.yaml; default ./policies.yaml when present")
    user: str = Field("admin", description="who the local user is when no authentication is configured")
    auth: AuthSettings = AuthSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_path = os.environ.get("WORKBENCH_CONFIG", "workbench.yaml")
        return (
            init_settings,
            env_settings,
            YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path),
        )

    # --- derived -----------------------------------------------------------------------------
    @property
    def home_path(self) -> Path:
        path = Path(self.home).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def catalog_url_resolved(self) -> str:
        return self.catalog_url or f"sqlite:///{(self.home_path / 'catalog.db').resolve()}"

    @property
    def openai_api_key(self) -> str | None:
        return os.environ.get("OPENAI_API_KEY")

    @property
    def openai_base_url(self) -> str | None:
        return os.environ.get("OPENAI_BASE_URL")

    @property
    def llm_configured(self) -> bool:
        """A model is named and, for the OpenAI-compatible default, there is a key or a server to ask."""
        if self.llm_provider != "openai":
            return bool(self.llm_model)
        return bool(self.llm_model and (self.openai_api_key or self.openai_base_url))

    def pii_key_bytes(self) -> bytes:
        """The tokenisation key; generated once per `home` when not configured.

        A generated key is written with mode 0600 and reused, so tokens stay stable across
        ingests (joins on tokenised fields keep working) without a secret in the repository.
        """
        if self.pii_key is not None:
            return self.pii_key.get_secret_value().encode()
        key_file = self.home_path / "pii.key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        return key_file.read_text().strip().encode()

    def policies_path(self) -> Path | None:
        if self.policies:
            path = Path(self.policies)
            if not path.exists():
                raise ConfigError(f"policies file {path} does not exist", "fix WORKBENCH_POLICIES or create the file")
            return path
        default = Path("policies.yaml")
        return default if default.exists() else None


@lru_cache(maxsize=1)
def _cached() -> Settings:
    return Settings()


def get_settings(**overrides: Any) -> Settings:
    """Settings for this process; keyword overrides (e.g. ``lake=...``) win over everything."""
    if overrides:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    return _cached()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    _cached.cache_clear()
