#!/usr/bin/env python3
"""OpenBLAS's (numpy's) f32 GEMM rate on Curves shapes, medians of 41 runs.

    OPENBLAS_NUM_THREADS=1 python3 scripts/openblas-gemm.py   # and =2

Compared with faer's in docs/benchmarks.md (issue 13, fourth pass).
"""
import time

import numpy as np

SHAPES = [(1000, 784, 400), (1000, 400, 784), (1000, 400, 200), (1000, 200, 100), (1000, 100, 50)]


def median_seconds(run, repeats=41, warmup=5):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2]


for m, k, n in SHAPES:
    a = np.random.rand(m, k).astype(np.float32)
    b = np.random.rand(k, n).astype(np.float32)
    c = np.empty((m, n), np.float32)
    seconds = median_seconds(lambda: np.matmul(a, b, out=c))
    print(f"{m}x{k}·{k}x{n}: {seconds * 1e3:.3f} ms, {2 * m * k * n / seconds / 1e9:.0f} GFLOP/s")
