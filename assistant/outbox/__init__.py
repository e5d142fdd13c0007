"""The outbox: replies humans approved, claimed, posted and confirmed by scheduling tools."""
