"""Reading a policy file: TOML in, a compiled `Policy` out, or every problem at once.

Problems name the file, the line and the dotted key (`acme.toml:7: platforms.x.max_length: ...`) so an
admin can fix the file without guessing. tomllib reports no positions for keys, so `_key_lines`
finds them by scanning the source for table headers and `key =` lines.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import tomllib
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Any

import regex

from assistant.policy.length import canonical_platform, platform_limit
from assistant.policy.model import DEFAULT_MAX_WAIT, BLOCK, WARN, Escalation, Example, PhraseList, Policy, PromiseKind, Rules

EXPECTATIONS = (BLOCK, WARN, "pass")

_BARE_KEY = r"[A-Za-z0-9_\-]+"
_KEY = rf"""(?:{_BARE_KEY}|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED_KEY = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_ARRAY_HEADER = regex.compile(rf"\s*\[\[\s*({_DOTTED_KEY})\s*\]\]")
_TABLE_HEADER = regex.compile(rf"\s*\[\s*({_DOTTED_KEY})\s*\]")
_KEY_LINE = regex.compile(rf"\s*({_DOTTED_KEY})\s*=")
_KEY_PART = regex.compile(_KEY)
_LAST_STEP = regex.compile(r"(?:\.[^.\[]+|\[\d+\])$")
_TOML_POSITION = regex.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_PLACEHOLDER = regex.compile(r"\{(\w*)\}")
_DOMAIN = regex.compile(r"[\w\-]+(?:\.[\w\-]+)*")
_STARTS_WORD = regex.compile(r"\w")
_DURATION = regex.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_KIND_NAME = regex.compile(r"[a-z][a-z0-9_]{0,63}")


class PolicyFileError(ValueError):
    """A policy file that cannot be used; `messages` lists every problem found, one per line."""

    def __init__(self, messages: list[str]):
        super().__init__("\n".join(messages))
        self.messages = messages


def _dotted(dotted_key: str) -> str:
    return ".".join(part.strip("\"'") for part in _KEY_PART.findall(dotted_key))


def _key_lines(source: str) -> dict[str, int]:
    """The line where each table, array-of-tables entry and key first appears, by dotted path
    (`rules.max_emojis`, `escalate[1].patterns`)."""
    lines: dict[str, int] = {}
    entries: dict[str, int] = {}
    table = ""
    for number, line in enumerate(source.splitlines(), 1):
        if header := _ARRAY_HEADER.match(line):
            name = _dotted(header[1])
            entries[name] = entries.get(name, -1) + 1
            table = f"{name}[{entries[name]}]"
        elif header := _TABLE_HEADER.match(line):
            table = _dotted(header[1])
        elif key := _KEY_LINE.match(line):
            lines.setdefault(f"{table}.{_dotted(key[1])}" if table else _dotted(key[1]), number)
            continue
        else:
            continue
        lines.setdefault(table, number)
    return lines


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


class _Reader:
    """Walks the parsed TOML, converting what is valid and collecting a message for what is not."""

    def __init__(self, source: str, source_name: str, default_max_length: int):
        self.source_lines = source.splitlines()
        self.source_name = source_name
        self.default_max_length = default_max_length
        self.key_lines = _key_lines(source)
        self.messages: list[str] = []

    def line_of(self, path: str, value: Any = None) -> int:
        """The line of `path`, or of the nearest enclosing key; a list item is looked for by its quoted
        text on the lines from its key onwards, as long lists span several lines."""
        item = path
        while item and item not in self.key_lines:
            item = _LAST_STEP.sub("", item)
        line = self.key_lines.get(item, 1)
        if isinstance(value, str) and item != path:
            quoted = (f"'{value}'", '"{}"'.format(value.replace("\\", "\\\\").replace('"', '\\"')))
            for number in range(line, len(self.source_lines) + 1):
                text = self.source_lines[number - 1]
                if any(form in text for form in quoted):
                    return number
                if number > line and (_KEY_LINE.match(text) or _TABLE_HEADER.match(text)):
                    break
        return line

    def problem(self, path: str, message: str, value: Any = None) -> None:
        self.messages.append(f"{self.source_name}:{self.line_of(path, value)}: {path}: {message}")

    def table(self, value: Any, path: str, fields: dict[str, Callable], required: tuple[str, ...] = ()) -> dict:
        """The valid fields of a table, converted; unknown, missing and invalid ones are reported."""
        if not isinstance(value, dict):
            self.problem(path, f"expected a table, got {_shown(value)}")
            return {}
        converted = {}
        for key, item in value.items():
            at = f"{path}.{key}" if path else key
            if key not in fields:
                close = difflib.get_close_matches(key, fields, n=1)
                hint = f"did you mean {close[0]}?" if close else f"expected one of {', '.join(fields)}"
                self.problem(at, f"unknown key; {hint}")
            elif (result := fields[key](self, item, at)) is not None:
                converted[key] = result
        for key in required:
            if key not in value:
                self.problem(path, f"missing {key}")
        return converted

    def tables(self, value: Any, path: str, fields: dict[str, Callable], required: tuple[str, ...]) -> list[tuple[int, dict]]:
        """An array of tables (`[[escalate]]`): each entry, converted, with the line it starts on."""
        if not isinstance(value, list):
            self.problem(path, f"expected a list of tables ([[{path}]]), got {_shown(value)}")
            return []
        return [(self.line_of(f"{path}[{index}]"), self.table(entry, f"{path}[{index}]", fields, required))
                for index, entry in enumerate(value)]

    # Field readers: each returns the converted value, or None after reporting why it cannot.

    def string(self, value: Any, path: str) -> str | None:
        if isinstance(value, str):
            return value
        self.problem(path, f"expected a string, got {_shown(value)}")
        return None

    def boolean(self, value: Any, path: str) -> bool | None:
        if isinstance(value, bool):
            return value
        self.problem(path, f"expected true or false, got {_shown(value)}")
        return None

    def integer(self, value: Any, path: str) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.problem(path, f"expected an integer, got {_shown(value)}")
        return None

    def count(self, value: Any, path: str) -> int | None:
        number = self.integer(value, path)
        if number is not None and number < 0:
            self.problem(path, f"expected zero or more, got {number}")
            return None
        return number

    def strings(self, value: Any, path: str, item: Callable | None = None) -> list | None:
        if not isinstance(value, list):
            self.problem(path, f"expected a list of strings, got {_shown(value)}")
            return None
        items = []
        for index, entry in enumerate(value):
            at = f"{path}[{index}]"
            text = self.non_empty_string(entry, at)
            items.append(item(self, text, at) if item and text is not None else text)
        return items

    def non_empty_string(self, value: Any, path: str) -> str | None:
        text = self.string(value, path)
        if text is not None and not text.strip():
            self.problem(path, "must not be empty")
            return None
        return text

    def pattern(self, value: str, path: str) -> regex.Pattern | None:
        try:
            compiled = regex.compile(value)
        except regex.error as error:
            self.problem(path, f"regular expression does not compile: {error.msg} at position {error.pos} "
                               f"in {value!r}", value)
            return None
        if compiled.fullmatch(""):
            self.problem(path, f"regular expression {value!r} matches empty text, so it would match "
                               f"everywhere", value)
            return None
        return compiled

    def domain(self, value: str, path: str) -> str | None:
        domain = value.strip().lower().rstrip(".")
        if _DOMAIN.fullmatch(domain):
            return domain
        self.problem(path, f"expected a domain like help.acme.example, got {value!r}", value)
        return None

    def patterns(self, value: Any, path: str) -> list | None:
        return self.strings(value, path, _Reader.pattern)

    def domains(self, value: Any, path: str) -> list | None:
        return self.strings(value, path, _Reader.domain)

    def severity(self, value: Any, path: str) -> str | None:
        if value in (BLOCK, WARN):
            return value
        self.problem(path, f"expected {BLOCK} or {WARN}, got {_shown(value)}")
        return None

    def expectation(self, value: Any, path: str) -> str | None:
        if value in EXPECTATIONS:
            return value
        self.problem(path, f"expected one of {', '.join(EXPECTATIONS)}, got {_shown(value)}")
        return None

    def sign_off(self, value: Any, path: str) -> regex.Pattern | None:
        template = self.non_empty_string(value, path)
        if template is None:
            return None
        unknown = [name for name in _PLACEHOLDER.findall(template) if name != "initials"]
        if unknown:
            self.problem(path, f"unknown placeholder {{{unknown[0]}}}; only {{initials}} is supported")
            return None
        return _sign_off_pattern(template)

    def duration(self, value: Any, path: str) -> dt.timedelta | None:
        """``"4h"``, ``"30m"``, ``"2d"``, ``"1d12h"``: a positive span of days, hours, minutes and seconds."""
        text = self.non_empty_string(value, path)
        if text is None:
            return None
        found = _DURATION.fullmatch(text.strip().replace(" ", ""))
        span = dt.timedelta(days=int(found[1] or 0), hours=int(found[2] or 0), minutes=int(found[3] or 0),
                            seconds=int(found[4] or 0)) if found else dt.timedelta(0)
        if span <= dt.timedelta(0):
            self.problem(path, f'expected a positive duration like "4h", "30m", "2d" or "1d12h", got {text!r}', text)
            return None
        return span

    def promise_kinds(self, value: Any, path: str) -> list[PromiseKind] | None:
        """``[promises.NAME]`` tables, each with ``patterns`` and ``due_after``."""
        if not isinstance(value, dict):
            self.problem(path, f"expected a table per kind of promise ([promises.get_back]), got {_shown(value)}")
            return None
        kinds = []
        for name, table in value.items():
            at = f"{path}.{name}"
            if not _KIND_NAME.fullmatch(name):
                self.problem(at, "a kind's name is lower-case letters, digits and _ (up to 64), starting with a letter")
                continue
            fields = self.table(table, at, _PROMISE_KIND, ("patterns", "due_after"))
            if "patterns" in fields and "due_after" in fields:
                kinds.append(PromiseKind(name, tuple(fields["patterns"]), fields["due_after"]))
        return kinds

    def max_lengths(self, value: Any, path: str) -> dict[str, int] | None:
        """Per-platform limits, each positive and no looser than the platform's own."""
        if not isinstance(value, dict):
            self.problem(path, f"expected a table per platform ([platforms.x]), got {_shown(value)}")
            return None
        limits: dict[str, int] = {}
        for name, table in value.items():
            at = f"{path}.{name}"
            platform = canonical_platform(name)
            if platform in limits:
                self.problem(at, f"{name} is another name for {platform}, which is already set")
            given = self.table(table, at, {"max_length": _Reader.integer}).get("max_length")
            if given is None:
                continue
            limit = platform_limit(platform, self.default_max_length)
            if given <= 0:
                self.problem(f"{at}.max_length", f"expected a positive number of characters, got {given}")
            elif given > limit:
                self.problem(f"{at}.max_length", f"{given} is looser than {name}'s limit of {limit}; "
                                                 f"a policy may only tighten it")
            else:
                limits[platform] = given
        return limits


_VOICE = {"description": _Reader.string, "sign_off": _Reader.sign_off}
_RULES = {
    "banned_phrases": _Reader.strings,
    "warn_phrases": _Reader.strings,
    "banned_patterns": _Reader.patterns,
    "max_emojis": _Reader.count,
    "max_hashtags": _Reader.count,
    "allowed_link_domains": _Reader.domains,
    "only_mention_author": _Reader.boolean,
}
_ESCALATE = {"name": _Reader.non_empty_string, "patterns": _Reader.patterns}
_OPT_OUT = {"patterns": _Reader.patterns}
_PHRASE_RULE = {"phrase": _Reader.non_empty_string, "severity": _Reader.severity, "note": _Reader.string}
_SERVICE = {"max_wait": _Reader.duration, "model_judges_told_before": _Reader.boolean}
_PROMISE_KIND = {"patterns": _Reader.patterns, "due_after": _Reader.duration}
_EXAMPLE = {"platform": _Reader.non_empty_string, "text": _Reader.string, "expect": _Reader.expectation,
            "author": _Reader.string}
_TOP = {
    "voice": lambda reader, value, path: reader.table(value, path, _VOICE),
    "platforms": _Reader.max_lengths,
    "rules": lambda reader, value, path: reader.table(value, path, _RULES),
    "escalate": lambda reader, value, path: reader.tables(value, path, _ESCALATE, ("name", "patterns")),
    "opt_out": lambda reader, value, path: reader.table(value, path, _OPT_OUT),
    "examples": lambda reader, value, path: reader.tables(value, path, _EXAMPLE, ("platform", "text", "expect")),
    "service": lambda reader, value, path: reader.table(value, path, _SERVICE),
    "promises": _Reader.promise_kinds,
    "phrase_rules": lambda reader, value, path: reader.tables(value, path, _PHRASE_RULE, ("phrase", "severity")),
}


def _phrase_list(phrases: list[str]) -> PhraseList:
    """One case-insensitive alternation, longest phrase first; a word boundary is required only at
    an end that is a word character, so "valued customer" skips "valued customers" while a phrase
    like "!!!" still matches. Any run of spaces or line breaks matches a space in the phrase."""
    if not phrases:
        return PhraseList((), None)
    alternatives = []
    for index, phrase in sorted(enumerate(phrases), key=lambda item: -len(item[1])):
        phrase = phrase.strip()
        body = r"\s+".join(regex.escape(word) for word in phrase.split())
        before = r"(?<!\w)" if _STARTS_WORD.match(phrase[0]) else ""
        after = r"(?!\w)" if _STARTS_WORD.match(phrase[-1]) else ""
        alternatives.append(f"(?P<p{index}>{before}{body}{after})")
    return PhraseList(tuple(p.strip() for p in phrases), regex.compile("|".join(alternatives), regex.IGNORECASE))


_DASHES = "-‐‑‒–—―"
"""A dash in a sign-off matches any dash: a reviewer types "-RE" with the hyphen on their keyboard."""


def _sign_off_pattern(template: str) -> regex.Pattern:
    """The sign-off at the very end of the text; {initials} stands for two or three capital letters, and any
    dash stands for any dash (hyphen, en dash, em dash)."""
    escape = lambda word: "".join(f"[{_DASHES}]" if c in _DASHES else regex.escape(c) for c in word)  # noqa: E731
    literal = lambda part: r"\s+".join(escape(word) for word in part.split(" "))
    body = r"(?<!\p{L})\p{Lu}{2,3}".join(literal(part) for part in template.strip().split("{initials}"))
    return regex.compile(rf"{body}\s*\Z")


def load_policy(text: str, *, source_name: str = "policy.toml", default_max_length: int = 2000) -> Policy:
    """Parse and compile a policy file, or raise `PolicyFileError` listing every problem in it."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = _TOML_POSITION.search(message)
        where = f"{position[1]}: invalid TOML: {message[:position.start()]} (column {position[2]})" if position \
            else f"{len(text.splitlines()) or 1}: invalid TOML: {message}"
        raise PolicyFileError([f"{source_name}:{where}"]) from None

    reader = _Reader(text, source_name, default_max_length)
    sections = reader.table(document, "", _TOP)
    if reader.messages:
        raise PolicyFileError(reader.messages)

    voice, rules, service = sections.get("voice", {}), sections.get("rules", {}), sections.get("service", {})
    learned: dict[str, list[str]] = {BLOCK: [], WARN: []}
    for _, entry in sections.get("phrase_rules", []):  # [[phrase_rules]]: added one by one (the edits page)
        learned[entry["severity"]].append(entry["phrase"])
    return Policy(
        source=text,
        source_name=source_name,
        hash=hashlib.sha256(text.encode()).hexdigest(),
        voice_description=voice.get("description", ""),
        sign_off=document.get("voice", {}).get("sign_off"),
        sign_off_pattern=voice.get("sign_off"),
        max_lengths=MappingProxyType(sections.get("platforms", {})),
        rules=Rules(
            banned_phrases=_phrase_list(rules.get("banned_phrases", []) + learned[BLOCK]),
            warn_phrases=_phrase_list(rules.get("warn_phrases", []) + learned[WARN]),
            banned_patterns=tuple(rules.get("banned_patterns", ())),
            max_emojis=rules.get("max_emojis"),
            max_hashtags=rules.get("max_hashtags"),
            allowed_link_domains=tuple(rules["allowed_link_domains"]) if "allowed_link_domains" in rules else None,
            only_mention_author=rules.get("only_mention_author", False),
        ),
        escalations=tuple(Escalation(entry["name"], tuple(entry["patterns"]))
                          for _, entry in sections.get("escalate", [])),
        opt_out=tuple(sections.get("opt_out", {}).get("patterns", ())),
        examples=tuple(Example(line, canonical_platform(entry["platform"]), entry["text"], entry["expect"],
                               entry.get("author"))
                       for line, entry in sections.get("examples", [])),
        max_wait=service.get("max_wait", DEFAULT_MAX_WAIT),
        promise_kinds=tuple(sections["promises"]) if "promises" in sections else None,
        model_judges_told_before=service.get("model_judges_told_before", False),
    )


def promise_kinds_of(policy: Policy) -> tuple[PromiseKind, ...]:
    """The kinds of promise a brand's replies are read for: its own ``[promises]``, else the shipped default's."""
    return policy.promise_kinds if policy.promise_kinds is not None else default_policy().promise_kinds or ()


@cache
def default_policy() -> Policy:
    """The policy of a brand that has none of its own, shipped with the package."""
    return load_policy(files(__package__).joinpath("default_policy.toml").read_text("utf-8"),
                       source_name="default_policy.toml")
