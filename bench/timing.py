"""What the benchmark scripts share to time calls and print peer tables: medians of blocks of
calls, rounds interleaved between the contenders (this machine's speed drifts between slow and
fast phases, so each contender is timed in every phase), and a Markdown row with the speed-up
over the fastest peer."""

import statistics
import time


def median_seconds(fn, repeats, min_block_seconds=0.02):
    """Median over `repeats` blocks of the time of one call; short calls are batched in blocks."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    per_block = max(1, int(min_block_seconds / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(per_block):
            fn()
        samples.append((time.perf_counter() - start) / per_block)
    return statistics.median(samples)


# A pause after each contender: OpenMP thread pools keep spinning for a while after their last
# task, and a contender must not pay for the previous one's.
PAUSE_SECONDS = 0.1


def interleaved_medians(functions, rounds, repeats, min_block_seconds=0.02):
    """For each callable (None gives None): the median over `rounds` rounds of its median_seconds,
    the callables taking turns within each round."""
    samples = [[] for _ in functions]
    for _ in range(rounds):
        for fn, times in zip(functions, samples):
            if fn is not None:
                times.append(median_seconds(fn, repeats, min_block_seconds))
                time.sleep(PAUSE_SECONDS)
    return [statistics.median(times) if times else None for times in samples]


def peer_times(theirs, ort, repeats, min_block_seconds=0.02):
    """Median seconds of PyTorch NCHW, PyTorch channels_last and ONNX Runtime (None where absent)."""
    times = [median_seconds(fn, repeats, min_block_seconds) for fn in theirs] or [None, None]
    return times + [median_seconds(ort, repeats, min_block_seconds) if ort else None]


def print_peer_row(label, t_ours, peers, rate, t_others=()):
    """A table row: convpool's ms, each peer's (or -), the speed-up over the fastest peer, rate,
    and convpool's ms in the other settings compared (t_others)."""
    present = [t for t in peers if t is not None]
    columns = " | ".join(f"{t * 1e3:.3f}" if t is not None else "-" for t in peers)
    ratio = f"{min(present) / t_ours:.2f}x" if present else "-"
    others = "".join(f" {t * 1e3:.3f} |" for t in t_others)
    print(f"| {label} | {t_ours * 1e3:.3f} | {columns} | {ratio} | {rate} |{others}", flush=True)
