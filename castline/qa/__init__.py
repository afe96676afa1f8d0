"""Automatic quality assurance: every chunk heard, scored, and fixed before delivery."""
