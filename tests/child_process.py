"""Running code in a fresh interpreter, for tests whose failure is a crash, a hang or exhausted
memory: the child's death fails the test instead of killing pytest. The child's prelude has the
helpers such cases need (views too large to copy, a memory limit, arrays against unreadable
pages)."""

import json
import subprocess
import sys
import textwrap

# What a child may use beyond Python, NumPy and convpool themselves (~60 MB) for inputs of a few
# kilobytes: scratch is bounded by the input and output, never by a stride or a padding.
PEAK_MB = 250

CHILD_PRELUDE = """
import json, resource, sys, time
import numpy as np
import convpool as cp

def huge_view(shape, dtype=np.float32):
    '''Shape `shape` over a single element: copying it would need the whole size.'''
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape, (0,) * len(shape))

def limit_memory(extra_mb):
    '''Address space limited to what the process maps now plus extra_mb.'''
    with open("/proc/self/status") as status:
        mapped_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limit = (mapped_kb + extra_mb * 1024) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

def peak_memory_mb():
    # VmHWM, not getrusage's ru_maxrss: that one keeps the forking parent's peak across exec.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) // 1024

def guarded(shape, dtype=np.float32, side="after"):
    '''A C-contiguous array of `shape` placed against a page that cannot be read or written: its
    last byte just before it (side="after") or its first byte just after it (side="before"), so
    that the first out-of-bounds access kills the process instead of reading a neighbour.'''
    import ctypes, mmap
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    page = mmap.PAGESIZE
    data_pages = -(-nbytes // page)
    region = mmap.mmap(-1, (data_pages + 2) * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    for guard in (base, base + (data_pages + 1) * page):
        if libc.mprotect(guard, page, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")
    offset = page + (data_pages * page - nbytes if side == "after" else 0)
    array = np.frombuffer(region, dtype, int(np.prod(shape)), offset).reshape(shape)
    _GUARDED.append(region)  # the mapping lives as long as the child
    return array

_GUARDED = []

def outcome(call):
    started = time.perf_counter()
    try:
        call()
        kind = "ok"
    except Exception as error:
        kind = type(error).__name__
    return kind, time.perf_counter() - started
"""


def run_child(body, timeout=120):
    """Runs the prelude and `body` in a fresh interpreter; returns (returncode, stdout, stderr)."""
    result = subprocess.run([sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(body)],
                            capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stdout, result.stderr


def run_cases(cases, prelude="", timeout=120):
    """Evaluates each `name: expression` in one child, in order, printing every outcome as it
    comes, so that a crash names the case it happened in. Returns {name: (kind, seconds)} and the
    child's peak resident memory in MB."""
    body = prelude + "\nCASES = " + repr(cases) + """
for name, expression in CASES.items():
    print("START", name, flush=True)
    kind, seconds = outcome(lambda: eval(expression))
    print("DONE", json.dumps([name, kind, seconds]), flush=True)
print("PEAK", peak_memory_mb(), flush=True)
"""
    code, out, err = run_child(body, timeout)
    results, peak, started = {}, None, None
    for line in out.splitlines():
        if line.startswith("START "):
            started = line[len("START "):]
        elif line.startswith("DONE "):
            name, kind, seconds = json.loads(line[len("DONE "):])
            results[name] = (kind, seconds)
        elif line.startswith("PEAK "):
            peak = int(line.split()[1])
    assert code == 0, f"the child died (status {code}) in case {started!r}: {err[-2000:]}"
    return results, peak


def assert_outcomes(results, expected, seconds=5.0):
    for name, allowed in expected.items():
        kind, took = results[name]
        assert kind in allowed, f"{name}: raised {kind}, expected one of {allowed}"
        assert took < seconds, f"{name}: took {took:.1f} s"
