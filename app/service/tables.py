"""Every table of the store (saved voices, API keys, tenant limits, stream leases, rate windows, usage, contexts,
pronunciation dictionaries), as the code reads and writes them. The migrations (app/service/migrations/versions/)
make the same in a database, and
tests/voices/test_migrations.py checks that they agree: a change here needs a migration there."""

from __future__ import annotations

import sqlalchemy as sa

NAME_MAX = 64  # a saved voice's name, a tenant's name
metadata = sa.MetaData()

voices_table = sa.Table(
    "tts_voices",
    metadata,
    sa.Column("tenant", sa.String(NAME_MAX), primary_key=True),  # whose voice it is: other tenants never see it
    sa.Column("name", sa.String(NAME_MAX), primary_key=True),
    sa.Column("reference_text", sa.Text, nullable=False),  # normalized: what the model is prompted with
    sa.Column("transcript", sa.Text, nullable=False),  # as uploaded
    sa.Column("reference_tokens", sa.LargeBinary, nullable=False),  # int32 little-endian codec tokens
    sa.Column("audio_seconds", sa.Float, nullable=False),
    sa.Column("audio_sha256", sa.String(64), nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("consent", sa.Text, nullable=False),  # the value the uploader gave
    sa.Column("consent_by", sa.Text, nullable=False),  # who consented, as the uploader said ("" if not said)
    sa.Column("created_from", sa.Text, nullable=False),  # the uploading client's address
    sa.Column("created_at", sa.String(32), nullable=False),  # UTC, ISO 8601
    sa.Column("created_by_key", sa.String(64), nullable=False),  # the key id it was saved under ("" before keys)
)

keys_table = sa.Table(
    "tts_api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # public, stable: names the key in logs, usage, the CLI
    sa.Column("tenant", sa.String(NAME_MAX), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),  # sha256 hex of the secret
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("max_streams", sa.Integer, nullable=False),  # each limit: 0 is none
    sa.Column("requests_per_minute", sa.Integer, nullable=False),
    sa.Column("chars_per_minute", sa.Integer, nullable=False),
    sa.Column("audio_seconds_per_day", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),  # UTC, ISO 8601
    sa.Column("revoked_at", sa.String(32), nullable=True),  # set: refused from then on
)

leases_table = sa.Table(
    "tts_leases",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("scope", sa.String(160), nullable=False, index=True),  # whose slot: `streams:<key id>`
    sa.Column("expires_at", sa.Float, nullable=False),  # Unix time; renewed while its stream runs
)

windows_table = sa.Table(
    "tts_rate_windows",
    metadata,
    sa.Column("scope", sa.String(160), primary_key=True),  # what is counted, of whom: `requests:<key id>`
    sa.Column("window", sa.BigInteger, primary_key=True),  # which window: Unix time // its length
    sa.Column("amount", sa.Float, nullable=False),
)

usage_table = sa.Table(
    "tts_usage",
    metadata,
    sa.Column("tenant", sa.String(NAME_MAX), primary_key=True),
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("voice", sa.String(NAME_MAX), primary_key=True),
    sa.Column("endpoint", sa.String(32), primary_key=True),
    sa.Column("hour", sa.String(13), primary_key=True),  # UTC: 2026-12-07T14
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("characters", sa.BigInteger, nullable=False),
    sa.Column("audio_ms", sa.BigInteger, nullable=False),  # delivered audio, milliseconds
)

contexts_table = sa.Table(
    "tts_contexts",
    metadata,
    sa.Column("tenant", sa.String(NAME_MAX), primary_key=True),
    sa.Column("context_id", sa.String(128), primary_key=True),
    sa.Column("claim", sa.String(32), nullable=False),  # the request generating it now, or that generated it
    sa.Column("pending", sa.Boolean, nullable=False),  # claimed, not resolved yet: a next request waits for it
    sa.Column("voice", sa.String(NAME_MAX), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("tokens", sa.LargeBinary, nullable=False),  # int32 little-endian speech tokens; empty: none
    sa.Column("expires_at", sa.Float, nullable=False),  # Unix time
)

tenant_limits_table = sa.Table(
    "tts_tenant_limits",
    metadata,
    sa.Column("tenant", sa.String(NAME_MAX), primary_key=True),  # a tenant's own limits, over all its keys
    sa.Column("max_streams", sa.Integer, nullable=False),  # each limit: 0 is none
    sa.Column("requests_per_minute", sa.Integer, nullable=False),
    sa.Column("chars_per_minute", sa.Integer, nullable=False),
    sa.Column("audio_seconds_per_day", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),  # UTC, ISO 8601
)

dictionaries_table = sa.Table(
    "tts_dictionaries",
    metadata,
    sa.Column("tenant", sa.String(NAME_MAX), primary_key=True),  # whose it is: other tenants never see it
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("latest_version", sa.String(32), nullable=False),  # a version id of tts_dictionary_versions
    sa.Column("latest_rules", sa.Integer, nullable=False),  # how many rules the latest version holds
    sa.Column("created_by_key", sa.String(64), nullable=False),  # the key id it was made under
    sa.Column("created_at", sa.Float, nullable=False),  # Unix time
    sa.Column("archived_at", sa.Float, nullable=True),  # set: archived (listed only when asked, still usable)
)

dictionary_versions_table = sa.Table(
    "tts_dictionary_versions",
    metadata,
    sa.Column("tenant", sa.String(NAME_MAX), primary_key=True),
    sa.Column("dictionary_id", sa.String(32), primary_key=True),
    sa.Column("version_id", sa.String(32), primary_key=True),
    sa.Column("rules", sa.Text, nullable=False),  # JSON: the version's rules as ElevenLabs' API gives them
    sa.Column("created_at", sa.Float, nullable=False),  # Unix time
)
