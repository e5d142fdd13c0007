"""Drafting: from a turn's context to a draft, with the model behind one small interface."""
