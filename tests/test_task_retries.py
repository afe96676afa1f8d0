"""Task retries: passing faults are retried, a user's error (CastlineError) fails at once."""

from __future__ import annotations

import pytest
from prefect.states import Completed, Failed

from castline.core.errors import StorageError
from castline_tasks.render import retry_unless_user_error


def _failed(error: Exception):
    return Failed(data=error)


@pytest.mark.parametrize("error, retried", [
    (StorageError("bucket 'x' does not exist at http://127.0.0.1:9"), False),
    (RuntimeError("engine process died"), True),
    (ConnectionResetError("reset"), True),
])
def test_only_passing_faults_are_retried(error, retried):
    assert retry_unless_user_error(None, None, _failed(error)) is retried


def test_a_completed_state_needs_no_decision():
    assert retry_unless_user_error(None, None, Completed(data=1)) is True
