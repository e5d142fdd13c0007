"""The append-only audit log."""

from assistant.audit.service import record

__all__ = ["record"]
