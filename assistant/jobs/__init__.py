"""Durable background work in the ``jobs`` table, and the worker that runs it."""
