"""The package's random generator: layer initialisation, dropout masks and stochastic-pooling seeds."""

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Seed the generator behind weight initialisation, dropout and stochastic pooling.

    Args:
        seed: anything ``numpy.random.default_rng`` takes (an int, a sequence of ints, None).

    Example:
        >>> cp.manual_seed(0)
        >>> first = cp.nn.Linear(3, 2).weight.data.copy()
        >>> cp.manual_seed(0)
        >>> np.array_equal(cp.nn.Linear(3, 2).weight.data, first)
        True
    """
    global _generator
    _generator = np.random.default_rng(seed)


def generator():
    return _generator


def layer_generator(seed=None):
    """A layer's own generator: seeded by ``seed``, or else drawn from the package generator."""
    return np.random.default_rng(_generator.integers(0, 2**63) if seed is None else seed)
