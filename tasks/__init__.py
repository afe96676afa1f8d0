"""Prefect tasks: thin wrappers over castline library calls (retries, logging, artifacts)."""
