"""`policy check` and `policy test` as an admin runs them: every problem points at file:line: key."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.policy import default_policy
from assistant.policy.commands import policy

ROOT = Path(__file__).parents[3]
SHIPPED = [ROOT / "assistant/policy/default_policy.toml", ROOT / "assistant/policy/demo_policy.toml",
           ROOT / "examples/policies/acme.toml"]


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Write bad.toml in a fresh folder and run `policy ARGS...` there."""
    monkeypatch.chdir(tmp_path)

    def run(source: str | None, *args: str):
        if source is not None:
            Path("bad.toml").write_text(source)
        return CliRunner().invoke(policy, list(args))

    return run


@pytest.mark.parametrize(("source", "expected"), [
    ("[rules\nmax_emojis = 1\n",
     "bad.toml:1: invalid TOML: Expected ']' at the end of a table declaration (column 7)"),
    ('[voice]\ndescription = "a"\ndescription = "b"\n', "bad.toml:3: invalid TOML:"),
    ("[rules]\nmax_emojis = 1\nmax_emoji = 2\n",
     "bad.toml:3: rules.max_emoji: unknown key; did you mean max_emojis?"),
    ("\n[tone]\n", "bad.toml:2: tone: unknown key; expected one of voice, platforms, rules, escalate, "
                   "opt_out, examples"),
    ("[rules]\nmax_emojis = 'two'\n", "bad.toml:2: rules.max_emojis: expected an integer, got 'two'"),
    ("[rules]\nmax_hashtags = -1\n", "bad.toml:2: rules.max_hashtags: expected zero or more, got -1"),
    ("[rules]\nonly_mention_author = 'yes'\n",
     "bad.toml:2: rules.only_mention_author: expected true or false, got 'yes'"),
    ("[rules]\nbanned_phrases = 'valued customer'\n",
     "bad.toml:2: rules.banned_phrases: expected a list of strings, got 'valued customer'"),
    ("[rules]\nbanned_patterns = [\n  'fine',\n  '(unclosed',\n]\n",
     "bad.toml:4: rules.banned_patterns[1]: regular expression does not compile: missing ) at position 9 "
     "in '(unclosed'"),
    ('[rules]\nbanned_patterns = [\n  "(a)",\n  "a\\\\b(",\n]\n',
     "bad.toml:4: rules.banned_patterns[1]: regular expression does not compile: missing ) at position 4"),
    ("[rules]\nbanned_patterns = ['a*']\n",
     "bad.toml:2: rules.banned_patterns[0]: regular expression 'a*' matches empty text, so it would match "
     "everywhere"),
    ("[rules]\nallowed_link_domains = ['https://help.acme.example/']\n",
     "bad.toml:2: rules.allowed_link_domains[0]: expected a domain like help.acme.example, "
     "got 'https://help.acme.example/'"),
    ("[voice]\nsign_off = '^{name}'\n",
     "bad.toml:2: voice.sign_off: unknown placeholder {name}; only {initials} is supported"),
    ("# Acme\n\n[platforms.x]\nmax_length = 400\n",
     "bad.toml:4: platforms.x.max_length: 400 is looser than x's limit of 280; a policy may only tighten it"),
    ("[platforms.bluesky]\nmax_length = 0\n",
     "bad.toml:2: platforms.bluesky.max_length: expected a positive number of characters, got 0"),
    ("[platforms.x]\nmax_len = 200\n", "bad.toml:2: platforms.x.max_len: unknown key; did you mean max_length?"),
    ("[[escalate]]\nname = 'legal'\npatterns = ['sue']\n\n[[escalate]]\npatterns = ['x']\n",
     "bad.toml:5: escalate[1]: missing name"),
    ("[[escalate]]\nname = 'legal'\npatterns = ['sue']\n[[escalate]]\nname = 'x'\npatterns = ['(']\n",
     "bad.toml:6: escalate[1].patterns[0]: regular expression does not compile"),
    ("[opt_out]\npatterns = ['stop', 3]\n", "bad.toml:2: opt_out.patterns[1]: expected a string, got 3"),
    ("[[examples]]\nplatform = 'x'\ntext = 'hi'\nexpect = 'fail'\n",
     "bad.toml:4: examples[0].expect: expected one of block, warn, pass, got 'fail'"),
])
def test_check_points_at_file_line_and_key(run, source, expected):
    result = run(source, "check", "bad.toml")
    assert result.exit_code == 1
    assert expected in result.output


def test_check_rejects_a_file_that_is_not_utf8(run):
    Path("bad.toml").write_bytes(b"[voice]\ndescription = 'caf\xe9'\n")
    result = run(None, "check", "bad.toml")
    assert result.exit_code == 1
    assert result.output == "bad.toml:2: not UTF-8 text (invalid continuation byte)\n"


def test_check_reports_every_problem_at_once(run):
    result = run("[rules]\nmax_emojis = 'two'\nmax_hashtags = 'one'\n", "check", "bad.toml")
    assert result.output.splitlines() == [
        "bad.toml:2: rules.max_emojis: expected an integer, got 'two'",
        "bad.toml:3: rules.max_hashtags: expected an integer, got 'one'",
    ]


def test_check_runs_examples_and_fails_on_a_wrong_expectation(run):
    source = """[rules]
banned_phrases = ["valued customer"]

[[examples]]
platform = "x"
text = "Hello there"
expect = "pass"

[[examples]]
platform = "x"
text = "Dear valued customer"
expect = "pass"
"""
    result = run(source, "check", "bad.toml")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "bad.toml:4: examples[0] (x): ok, pass",
        "bad.toml:9: examples[1] (x): FAIL, expected pass, got block",
        "    block banned_phrase [5:20] Banned phrase \"valued customer\": 'valued customer'",
        "bad.toml: valid, 1 of 2 examples as expected",
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_shipped_policies_pass_check(path):
    result = CliRunner().invoke(policy, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    assert result.output.count(": ok, ") >= 3


def test_default_policy_is_loaded_once():
    assert default_policy() is default_policy()
    assert default_policy().source_name == "default_policy.toml"


def test_test_prints_length_and_each_finding_with_its_excerpt(run):
    acme = str(SHIPPED[2])
    result = run(None, "test", acme, "--platform", "x", "--author", "ana",
                 "--text", "@bob we guarantee it, valued customer")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "length: 37 of 280 (as x counts)",
        "block only_mention_author [0:4] Mentions @bob; a reply may mention only the person it answers "
        "(@ana): '@bob'",
        "block banned_pattern [8:17] Banned wording \"guarantee\" (pattern (?i)\\bguarantee[ds]?\\b): 'guarantee'",
        "block banned_phrase [22:37] Banned phrase \"valued customer\": 'valued customer'",
        "block sign_off [37:37] Missing sign-off: end the reply with your initials like \"^AB\"",
    ]


def test_test_with_no_findings_and_with_an_invalid_file(run):
    acme = str(SHIPPED[2])
    clean = run(None, "test", acme, "--platform", "bluesky", "--text", "Sorry, Ana! ^JS")
    assert clean.output.splitlines() == ["length: 15 of 300 (as bluesky counts)", "no findings"]
    broken = run("[rules]\nmax_emojis = 'two'\n", "test", "bad.toml", "--platform", "x", "--text", "hi")
    assert broken.exit_code == 1
    assert "bad.toml:2: rules.max_emojis: expected an integer, got 'two'" in broken.output
