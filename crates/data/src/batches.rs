//! Seeded, shuffled minibatch streams: each epoch visits every example once in a fresh
//! random order; two streams with different seeds are independent (the metric batch is
//! drawn independently of the gradient batch).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// An endless stream of minibatch indices over `0..len`.
#[derive(Clone, Debug)]
pub struct BatchStream {
    order: Vec<usize>,
    position: usize,
    batch: usize,
    rng: StdRng,
}

impl BatchStream {
    /// Batches of `batch` examples (at most `len`) drawn from `0..len`.
    pub fn new(len: usize, batch: usize, seed: u64) -> BatchStream {
        let mut stream = BatchStream {
            order: (0..len).collect(),
            position: len,
            batch: batch.clamp(1, len.max(1)),
            rng: StdRng::seed_from_u64(seed),
        };
        stream.reshuffle();
        stream
    }

    fn reshuffle(&mut self) {
        self.order.shuffle(&mut self.rng);
        self.position = 0;
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The next batch's indices (a new epoch starts when fewer than a batch remain).
    pub fn next_indices(&mut self) -> &[usize] {
        if self.position + self.batch > self.order.len() {
            self.reshuffle();
        }
        let start = self.position;
        self.position += self.batch;
        &self.order[start..start + self.batch]
    }
}
