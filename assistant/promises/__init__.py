"""Promises our approved replies made, and the follow-ups they are owed."""
