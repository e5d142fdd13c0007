"""The tone-policy engine: a brand's policy file, loaded and compiled once, checks drafts without a database.

    policy = load_policy(text, source_name="acme.toml")
    findings = check_text(policy, draft, platform="x", author_handle="ana")
    if has_blocking(findings): ...
"""

from assistant.policy.checks import (PATTERN_TIMEOUT, check_text, effective_limit, has_blocking,
                                     match_escalation, matches_opt_out, run_examples)
from assistant.policy.length import PLATFORM_LIMITS, count_length, platform_limit
from assistant.policy.loader import PolicyFileError, default_policy, load_policy
from assistant.policy.model import BLOCK, WARN, Escalation, Example, ExampleResult, Finding, Policy, Rules

__all__ = [
    "BLOCK", "PATTERN_TIMEOUT", "PLATFORM_LIMITS", "WARN", "Escalation", "Example", "ExampleResult", "Finding",
    "Policy", "PolicyFileError", "Rules", "check_text", "count_length", "default_policy", "effective_limit",
    "has_blocking", "load_policy", "match_escalation", "matches_opt_out", "platform_limit", "run_examples",
]
