//! Seeded, shuffled minibatch streams: each epoch visits every example once in a fresh
//! random order; two streams with different seeds are independent (the metric batch is
//! drawn independently of the gradient batch). In-order streams visit the examples as they
//! are stored (online learning, where the order is the experiment).

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
    shuffle: bool,
}

impl BatchStream {
    /// Batches of `batch` examples (at most `len`) drawn from `0..len`.
    pub fn new(len: usize, batch: usize, seed: u64) -> BatchStream {
        let mut stream = BatchStream {
            order: (0..len).collect(),
            position: len,
            batch: batch.clamp(1, len.max(1)),
            rng: StdRng::seed_from_u64(seed),
            shuffle: true,
        };
        stream.reshuffle();
        stream
    }

    /// Batches of `batch` consecutive examples in stored order, from the start again after
    /// the last full batch.
    pub fn in_order(len: usize, batch: usize) -> BatchStream {
        BatchStream { shuffle: false, ..BatchStream::new(len, batch, 0) }.restarted()
    }

    fn restarted(mut self) -> BatchStream {
        self.order = (0..self.order.len()).collect();
        self.position = 0;
        self
    }

    fn reshuffle(&mut self) {
        if self.shuffle {
            self.order.shuffle(&mut self.rng);
        }
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
