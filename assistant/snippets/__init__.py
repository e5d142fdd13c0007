"""Saved replies: a brand's named texts (with placeholders such as ``{first_name}``) that reviewers insert into
a reply; admins manage them. The policy checks the reply they end up in like any other text."""
