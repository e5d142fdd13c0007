"""The parts of a text that rules count and platforms weigh: links, @mentions, #hashtags, emojis.

Each finder returns spans into the text as given, so findings can point at what they are about.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

import emoji
import regex
from publicsuffixlist import PublicSuffixList

# Top-level domains reserved for documentation and tests (RFC 2606, RFC 6761): brands' example
# policies and drafts use them, so a bare "help.acme.example" must read as a link too.
RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost"})
_ICANN_SUFFIXES = PublicSuffixList(only_icann=True)
"""The ICANN section of the Public Suffix List, shipped inside the package (no network): the real TLDs."""

_URL_CHARS = r"""[^\s<>"'\\`{}|^]"""   # a backslash ends a link: browsers read it as "/", urlsplit does not
_SCHEME_LINK = regex.compile(rf"(?i)\b[a-z][a-z0-9+.\-]*://{_URL_CHARS}+")
_BARE_LINK = regex.compile(
    rf"(?i)(?<![\w@.\-/:])"                                # not inside a word, an address or a path
    rf"(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+(?P<tld>[a-z]{{2,63}})(?![\w\-])"
    rf"(?::\d{{1,5}})?(?P<path>[/?#]{_URL_CHARS}*)?"
)
_TRAILING_PUNCTUATION = ".,;:!?'\")]"
_MENTION = regex.compile(
    r"(?<![\w@/\\])@(?P<handle>\w(?:[\w.\-]*\w)?(?:@\w(?:[\w\-]*\w)?(?:\.\w(?:[\w\-]*\w)?)+)?)"
)
_MAYBE_EMOJI = regex.compile(r"[#*0-9]?[^\x00-\x7F]+")
_HASHTAG = regex.compile(r"(?<![\w&#])#(?=\w*[^\W\d])\w+")


class Span(NamedTuple):
    start: int
    end: int
    value: str   # the link's host, the mention's handle, the hashtag or the emoji


def is_known_tld(tld: str, *, reserved: bool = True) -> bool:
    """A real top-level domain ("com", "jp", "zip"), or with ``reserved`` one of RFC 2606's."""
    tld = tld.lower()
    return (reserved and tld in RESERVED_TLDS) or _is_delegated_tld(tld)


@lru_cache(maxsize=4096)
def _is_delegated_tld(tld: str) -> bool:
    return _ICANN_SUFFIXES.publicsuffix("a." + tld, accept_unknown=False) is not None


def trim_link(url: str) -> str:
    """Drop sentence punctuation after a link ("see acme.com/help.") but keep a closing bracket it opened."""
    while url and url[-1] in _TRAILING_PUNCTUATION:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def _host(url: str, has_scheme: bool) -> str:
    try:
        return (urlsplit(url if has_scheme else "//" + url).hostname or "").rstrip(".")
    except ValueError:   # e.g. an invalid IPv6 literal: still a link, to nowhere we allow
        return ""


def find_links(text: str, *, with_scheme_only: bool = False) -> list[Span]:
    """Links with a scheme, and bare ones ("acme.com/help", "help.acme.example/x") whose top-level
    domain is real or which carry a path, so "Node.js" or "e.g." do not count as links."""
    links = [Span(m.start(), m.start() + len(url), _host(url, True))
             for m in _SCHEME_LINK.finditer(text) if (url := trim_link(m.group()))]
    if with_scheme_only:
        return links
    taken = [(s.start, s.end) for s in links]
    for m in _BARE_LINK.finditer(text):
        if any(start <= m.start() < end for start, end in taken):
            continue
        if is_known_tld(m["tld"]) or m["path"]:
            url = trim_link(m.group())
            links.append(Span(m.start(), m.start() + len(url), _host(url, False)))
    return sorted(links)


def find_mentions(text: str) -> list[Span]:
    return [Span(m.start(), m.end(), m["handle"]) for m in _MENTION.finditer(text)]


def find_hashtags(text: str) -> list[Span]:
    return [Span(m.start(), m.end(), m.group()) for m in _HASHTAG.finditer(text)]


def find_emojis(text: str) -> list[Span]:
    """Each emoji sequence once: a ZWJ family, a flag or a thumbs-up with a skin tone is one emoji.

    `emoji.emoji_list` walks the text in Python, so it only sees the runs that can hold an emoji:
    every emoji is non-ASCII but for the "#", "*" or digit that starts a keycap."""
    if text.isascii():
        return []
    return [Span(run.start() + e["match_start"], run.start() + e["match_end"], e["emoji"])
            for run in _MAYBE_EMOJI.finditer(text) for e in emoji.emoji_list(run.group())]
