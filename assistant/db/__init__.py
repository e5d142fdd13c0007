"""Database access: the engines, sessions and the one rule for writes (see ``engine.Database``)."""

from assistant.db.engine import Database, normalize_url

__all__ = ["Database", "normalize_url"]
