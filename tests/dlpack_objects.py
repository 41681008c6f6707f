"""Objects that offer an array through DLPack and nothing else, some of them misbehaving: what the
DLPack tests and the bindings fuzz hand to convpool."""


class DLPackOnly:
    """An array that offers DLPack and nothing else (no __array__, no buffer protocol)."""

    def __init__(self, array, device=(1, 0)):
        self._array, self._device = array, device

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._device


class LyingDevice(DLPackOnly):
    """An exporter given a garbage `device` for its __dlpack_device__ (named so in messages)."""


class FailingExport(DLPackOnly):
    """An exporter whose __dlpack__ raises an arbitrary exception."""

    def __dlpack__(self, **kwargs):
        raise KeyError("no capsule")
