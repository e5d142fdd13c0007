"""Who is asking: API keys (scheduling tools, per brand, with scopes) and users (reviewers and admins)."""
