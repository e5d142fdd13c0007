"""The append-only audit log."""

from assistant.audit.service import record, record_on

__all__ = ["record", "record_on"]
