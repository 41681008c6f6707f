import sys
from pathlib import Path

import pytest

# The references and configuration helpers live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))

import convpool  # noqa: E402


@pytest.fixture
def threads():
    """Runs the test body under a given thread count, restoring the previous one."""
    previous = convpool.get_num_threads()
    yield convpool.set_num_threads
    convpool.set_num_threads(previous)
