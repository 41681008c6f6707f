"""The package's random generator: layer initialisation, dropout masks and stochastic-pooling seeds."""

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Seed the generator behind weight initialisation, dropout and stochastic pooling."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator():
    return _generator


def child_generator():
    """An independent generator for one layer, drawn from the package generator."""
    return np.random.default_rng(_generator.integers(0, 2**63))
