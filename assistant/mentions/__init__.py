"""Mentions coming in: validation, the person behind each, and the turn it opens or joins."""
