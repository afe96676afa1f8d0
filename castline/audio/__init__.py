"""Audio plumbing: resampling and chunk files."""
