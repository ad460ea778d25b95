#!/usr/bin/env python3
"""OpenBLAS (numpy's) f32 GEMM rates on Curves shapes, medians of 41 (docs/benchmarks.md, issue 13).

OPENBLAS_NUM_THREADS=1 python3 scripts/openblas-gemm.py   # and =2
"""
import numpy as np, time
shapes=[(1000,784,400),(1000,400,784),(1000,400,200),(1000,200,100),(1000,100,50)]
for m,k,n in shapes:
    a=np.random.rand(m,k).astype(np.float32); b=np.random.rand(k,n).astype(np.float32); c=np.empty((m,n),np.float32)
    for _ in range(5): np.matmul(a,b,out=c)
    ts=[]
    for _ in range(41):
        t=time.perf_counter(); np.matmul(a,b,out=c); ts.append(time.perf_counter()-t)
    t=sorted(ts)[20]
    print(f"{m}x{k}x{n}: {t*1e3:.3f} ms {2*m*k*n/t/1e9:.0f} GFLOP/s")
