//! A bounded cache of compiled programs, keyed by a hash of the canonical IR text (plus
//! element type, phase partition and options), least recently used evicted first.

use std::any::Any;
use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use natgrad_ir::{DType, Graph};

use crate::backend::CompileOptions;
use crate::plan::Partition;

/// What a compiled program is cached under: the hash, and the text it was made from (compared
/// on a hit, so a hash collision is a miss, never a wrong program).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheKey {
    hash: u64,
    text: String,
}

impl CacheKey {
    /// The key of compiling `graph` in `dtype` with `partition` and `options`.
    pub fn new(graph: &Graph, dtype: DType, partition: &Partition, options: &CompileOptions) -> CacheKey {
        let text = format!("{dtype}|{partition:?}|{options:?}\n{}", natgrad_ir::text::print(graph));
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        CacheKey { hash: hasher.finish(), text }
    }
}

/// Compiled programs by [`CacheKey`], at most `capacity` of them.
pub struct CompileCache {
    capacity: usize,
    /// Most recently used first.
    entries: VecDeque<(CacheKey, Arc<dyn Any + Send + Sync>)>,
    hits: usize,
    misses: usize,
}

impl CompileCache {
    /// An empty cache holding at most `capacity` programs (0 caches nothing).
    pub fn new(capacity: usize) -> CompileCache {
        CompileCache { capacity, entries: VecDeque::new(), hits: 0, misses: 0 }
    }

    /// The value cached under `key`, if any and of type `V`.
    pub fn get<V: Any + Send + Sync + Clone>(&mut self, key: &CacheKey) -> Option<V> {
        let found = self.entries.iter().position(|(k, _)| k.hash == key.hash && k.text == key.text);
        let value = found.and_then(|i| {
            let entry = self.entries.remove(i).expect("found");
            let value = entry.1.downcast_ref::<V>().cloned();
            self.entries.push_front(entry);
            value
        });
        if value.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        value
    }

    /// Caches `value` under `key`, evicting the least recently used entry when full.
    pub fn insert<V: Any + Send + Sync>(&mut self, key: CacheKey, value: V) {
        self.entries.retain(|(k, _)| k != &key);
        if self.capacity == 0 {
            return;
        }
        self.entries.truncate(self.capacity - 1);
        self.entries.push_front((key, Arc::new(value)));
    }

    /// Programs held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most programs held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the capacity, evicting the least recently used entries beyond it.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.entries.truncate(capacity);
    }

    /// Drops every cached program.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// `(hits, misses)` since the cache was made.
    pub fn stats(&self) -> (usize, usize) {
        (self.hits, self.misses)
    }
}
