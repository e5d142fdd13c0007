"""The approval queue: reviewers read a turn with its person and drafts, and decide on it (SPEC 5 and 9)."""
