"""Episode scripts: the typed model and the parsers that build it."""
