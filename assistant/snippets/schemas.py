"""Saved replies on the wire (SPEC 12: ``{id, name, text}``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

SnippetName = Annotated[str, msgspec.Meta(min_length=1, max_length=80, description="What reviewers pick it by")]
SnippetText = Annotated[str, msgspec.Meta(min_length=1, max_length=5000, description=(
    "The text inserted; {first_name}, {name} and {handle} are filled in with the person's"))]


class SnippetOut(msgspec.Struct):
    id: int
    name: str
    text: str


class SnippetIn(msgspec.Struct, forbid_unknown_fields=True):
    name: SnippetName
    text: SnippetText


class SnippetPatch(msgspec.Struct, forbid_unknown_fields=True):
    name: SnippetName | None = None
    text: SnippetText | None = None
