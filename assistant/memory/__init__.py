"""Relationship memory beyond promises: nobody left behind, long histories summarised, what we told them
before, learning from reviewers' edits, and one person across platforms."""
