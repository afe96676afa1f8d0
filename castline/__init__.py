"""castline: long-form multi-speaker audio production (library; no Prefect imports)."""

__version__ = "0.1.0"
PROJECT_SAMPLE_RATE = 24_000
"""Every stage after synthesis works at this rate (Hz)."""
