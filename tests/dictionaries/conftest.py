"""The real PostgreSQL server of the saved-voice tests (tests/voices/conftest.py), for the dictionaries' too."""

from tests.voices.conftest import postgres_server, postgres_url, store_url  # noqa: F401
