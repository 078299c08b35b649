#!/usr/bin/env python3
"""The machine's own single-precision matrix-product rate: PyTorch's `a @ b` on 2048×2048 f32
matrices (MKL or OpenBLAS, the framework's default threads), the median of 10 after 3 warm-up
products. Prints one JSON object: {"sgemm_gflops": ..., "threads": ...}.

    python3 benches/reference/sgemm.py
"""

import json
import statistics
import time

import torch

N = 2048


def main() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(N, N), torch.randn(N, N)
    for _ in range(3):
        (a @ b).sum().item()
    times = []
    for _ in range(10):
        t = time.perf_counter()
        (a @ b)[0, 0].item()
        times.append(time.perf_counter() - t)
    flops = 2 * N**3
    print(json.dumps({"sgemm_gflops": flops / statistics.median(times) / 1e9,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
