"""Prefect flows composing castline tasks."""
