"""Evaluation of drafts: replay past conversations through the drafting path and measure what comes out."""
