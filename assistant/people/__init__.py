"""The real people behind handles, and everything said between them and the brand."""
