"""The append-only audit log."""

from assistant.audit.service import record, record_many

__all__ = ["record", "record_many"]
