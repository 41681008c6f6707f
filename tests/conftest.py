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


@pytest.fixture
def assert_thread_independent(threads):
    """Checks that run() returns bitwise identical arrays at 1, 2 and 3 threads."""
    def check(run):
        threads(1)
        single = run()
        for n in (2, 3):
            threads(n)
            results = run()
            assert len(results) == len(single)
            for a, b in zip(single, results):
                assert a.tobytes() == b.tobytes()
    return check
