"""Peak memory of ResNet-20 training (batch 128, SGD momentum 0.9, weight decay 5e-4): what six
training steps add to the process's peak resident set, for convpool and for PyTorch in each
layout. Each runs in a process of its own, since the peak of a process only grows.

    python bench/resnet_memory.py
"""

import gc
import resource
import subprocess
import sys

import numpy as np

BATCH = 128
STEPS = 6
LIBRARIES = ("convpool", "torch NCHW", "torch channels_last")


def peak_megabytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is in KB on Linux


def measure(library):
    """The peak before training and after STEPS steps, in MB, in this process."""
    import convpool as cp

    cp.set_num_threads(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    model = cp.models.resnet20()
    if library == "convpool":
        loss_fn = cp.nn.CrossEntropyLoss()
        optimizer = cp.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

        def step():
            loss_fn(model(x), y)
            model.zero_grad()
            model.backward(loss_fn.backward(), need_input_grad=False)
            optimizer.step()
    else:
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(2)
        layout = torch.channels_last if library.endswith("channels_last") else torch.contiguous_format
        network = cp.nn.to_torch(model).to(memory_format=layout)
        optimizer = torch.optim.SGD(network.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        tx, ty = torch.from_numpy(x).to(memory_format=layout), torch.from_numpy(y)

        def step():
            loss = F.cross_entropy(network(tx), ty)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    gc.collect()
    before = peak_megabytes()
    for _ in range(STEPS):
        step()
    return before, peak_megabytes()


def main():
    if len(sys.argv) == 2:
        print(*measure(sys.argv[1]))
        return
    print(f"| ResNet-20, batch {BATCH} | peak before training MB | peak after {STEPS} steps MB | added by training MB |")
    print("|---|---:|---:|---:|")
    for library in LIBRARIES:
        result = subprocess.run([sys.executable, __file__, library], capture_output=True, text=True, check=True)
        before, after = map(float, result.stdout.split())
        print(f"| {library} | {before:.0f} | {after:.0f} | {after - before:.0f} |", flush=True)


if __name__ == "__main__":
    main()
