//! The CPU backend's worker threads: one persistent rayon pool per thread count, made on
//! first use and shared by every program compiled with that count. Fused kernels and GEMM
//! blocks both run on it, so `CompileOptions::threads` is the whole story: no environment
//! variable, no threads spawned per call.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use natgrad_lower::Error;
use rayon::ThreadPool;

static POOLS: LazyLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = LazyLock::new(Default::default);

/// The pool of `threads` workers (at least 1).
pub fn shared(threads: usize) -> Result<Arc<ThreadPool>, Error> {
    let threads = threads.max(1);
    let mut pools = POOLS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(pool) = pools.get(&threads) {
        return Ok(Arc::clone(pool));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("natgrad-cpu-{i}"))
        .build()
        .map_err(|e| Error::Backend {
            backend: "cpu",
            message: format!("starting {threads} worker threads: {e}"),
        })?;
    let pool = Arc::new(pool);
    pools.insert(threads, Arc::clone(&pool));
    Ok(pool)
}

/// Runs `work(block)` for every block in `0..blocks` on `pool`'s workers (on the calling
/// thread when there is only one).
pub fn for_each_block(pool: &ThreadPool, blocks: usize, work: impl Fn(usize) + Sync) {
    match blocks {
        0 => {}
        1 => work(0),
        n => pool.scope(|scope| {
            for block in 0..n {
                let work = &work;
                scope.spawn(move |_| work(block));
            }
        }),
    }
}
