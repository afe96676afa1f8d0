"""Streaming signal measurement and dynamics: K-weighting, loudness, true peak, limiting."""
