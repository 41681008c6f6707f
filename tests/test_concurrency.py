"""Many Python threads calling the kernels at once (each call releases the GIL) get exactly the
results of serial calls."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import convpool as cp


def jobs():
    rng = np.random.default_rng(90)
    x = rng.standard_normal((4, 8, 20, 20)).astype(np.float32)
    ties = rng.integers(0, 3, (4, 8, 20, 20)).astype(np.float64)
    weight = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    small_weight = rng.standard_normal((6, 8, 5, 5)).astype(np.float32)
    grad = rng.standard_normal((4, 16, 18, 18)).astype(np.float32)
    relu_x = np.maximum(x, 0)
    return [
        lambda: cp.max_pool2d(ties, 3, 1, 1, return_indices=True, tie_break="last"),
        lambda: cp.max_pool2d_backward(np.ones((4, 8, 20, 20)), ties, None, 3, 1, 1, tie_break="split"),
        lambda: cp.avg_pool2d(x, 3, 2, 1, ceil_mode=True),
        lambda: cp.lp_pool2d(x, 2, 2),
        lambda: cp.stochastic_pool2d(relu_x, 2, seed=5, return_indices=True),
        lambda: cp.conv2d(x, weight, padding=1),
        lambda: cp.conv2d_backward(grad, x, weight),
        lambda: cp.conv2d(x, small_weight, stride=2),
        lambda: cp.relu(x),
    ]


def flatten(result):
    if isinstance(result, tuple):
        return [part for item in result for part in flatten(item)]
    return [result]


def test_concurrent_calls_match_serial_calls():
    work = jobs()
    serial = [flatten(job()) for job in work]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda index: (index, flatten(work[index]())), list(range(len(work))) * 6))
    for index, parts in concurrent:
        for expected, actual in zip(serial[index], parts):
            np.testing.assert_array_equal(actual, expected)


def test_thread_count_set_from_another_thread_applies_everywhere(threads):
    threads(1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(cp.get_num_threads).result() == 1
        pool.submit(cp.set_num_threads, 2).result()
    assert cp.get_num_threads() == 2


def test_threads_sharing_a_packed_weight_that_packs_on_first_use():
    # Every thread's first call finds the panels unpacked: one packs them (direct and Winograd
    # layouts, two input sizes that take different register tiles), the others wait and read them.
    rng = np.random.default_rng(91)
    weight = rng.standard_normal((64, 48, 3, 3)).astype(np.float32)
    inputs = [rng.standard_normal(shape).astype(np.float32) for shape in ((1, 48, 28, 28), (2, 48, 7, 7))]
    for winograd in (False, True):
        expected = [cp.conv2d(x, cp.PackedConv2dWeight(weight, winograd=winograd), padding=1) for x in inputs]
        packed = cp.PackedConv2dWeight(weight, winograd=winograd)
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda index: (index, cp.conv2d(inputs[index], packed, padding=1)),
                                    [0, 1] * 8))
        for index, result in results:
            np.testing.assert_array_equal(result, expected[index])
