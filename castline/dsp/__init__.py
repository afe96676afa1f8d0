"""Streaming signal processing: measurement (K-weighting, loudness, true peak) and dynamics."""
