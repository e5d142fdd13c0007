"""Signed webhooks (Standard Webhooks) telling subscribed tools about each step of a turn and reply."""
