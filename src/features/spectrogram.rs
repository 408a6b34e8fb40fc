//! A spectrogram for people to look at, made of the very frames the model scores: each column
//! is the mean of consecutive log filterbank frames, so a person sees what the classifier saw,
//! not a prettier picture computed some other way.
//!
//! The length of a stream is not always known in advance (a truncated file, a stream without a
//! frame count), so columns are pooled adaptively: frames fill columns of `frames_per_column`,
//! and when the next frame would open column `max_columns`, neighbouring columns are merged in
//! pairs and `frames_per_column` doubles. Column `i` therefore always covers frames
//! `[i * frames_per_column, (i + 1) * frames_per_column)`, and memory stays bounded by
//! `max_columns * n_bins` values whatever the length.

/// The pooled spectrogram of one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrogram {
    pub n_bins: usize,
    /// Model frames averaged into each column (the last column may hold fewer).
    pub frames_per_column: u64,
    /// Frames seen in all.
    pub frames: u64,
    /// Column-major: `values[c * n_bins + b]` is bin `b` (lowest frequency first) of column
    /// `c`, the mean natural-log filterbank energy, as the model sees it.
    pub values: Vec<f32>,
}

impl Spectrogram {
    pub fn columns(&self) -> usize {
        self.values.len().checked_div(self.n_bins).unwrap_or(0)
    }

    /// The lowest and highest value, or `None` when there is no column.
    pub fn range(&self) -> Option<(f32, f32)> {
        self.values.iter().fold(None, |acc, &v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
    }
}

/// Builds a [`Spectrogram`] from frames pushed in order.
#[derive(Debug, Clone)]
pub struct SpectrogramBuilder {
    n_bins: usize,
    max_columns: usize,
    frames_per_column: u64,
    frames: u64,
    /// Per-column sums, column-major like [`Spectrogram::values`].
    sums: Vec<f32>,
    counts: Vec<u32>,
}

impl SpectrogramBuilder {
    /// `max_columns` is raised to 1 if zero.
    pub fn new(n_bins: usize, max_columns: usize) -> Self {
        Self {
            n_bins,
            max_columns: max_columns.max(1),
            frames_per_column: 1,
            frames: 0,
            sums: Vec::new(),
            counts: Vec::new(),
        }
    }

    /// Adds frames, stored flat (`frames[t * n_bins + b]`, as in a `FrameBatch`).
    pub fn push(&mut self, frames: &[f32]) {
        if self.n_bins == 0 {
            return;
        }
        for frame in frames.chunks_exact(self.n_bins) {
            let mut column = (self.frames / self.frames_per_column) as usize;
            while column >= self.max_columns {
                self.halve();
                column = (self.frames / self.frames_per_column) as usize;
            }
            if column == self.counts.len() {
                self.counts.push(0);
                self.sums.resize(self.sums.len() + self.n_bins, 0.0);
            }
            let at = column * self.n_bins;
            for (sum, &v) in self.sums[at..at + self.n_bins].iter_mut().zip(frame) {
                *sum += v;
            }
            self.counts[column] += 1;
            self.frames += 1;
        }
    }

    /// Merges neighbouring columns in pairs: each column then covers twice the frames.
    fn halve(&mut self) {
        let n = self.n_bins;
        let columns = self.counts.len();
        let merged = columns.div_ceil(2);
        for c in 0..merged {
            let (a, b) = (2 * c, 2 * c + 1);
            for k in 0..n {
                let second = if b < columns { self.sums[b * n + k] } else { 0.0 };
                self.sums[c * n + k] = self.sums[a * n + k] + second;
            }
            self.counts[c] = self.counts[a] + if b < columns { self.counts[b] } else { 0 };
        }
        self.sums.truncate(merged * n);
        self.counts.truncate(merged);
        self.frames_per_column *= 2;
    }

    pub fn finish(self) -> Spectrogram {
        let n = self.n_bins;
        let mut values = self.sums;
        for (c, &count) in self.counts.iter().enumerate() {
            let k = 1.0 / count.max(1) as f32;
            for v in &mut values[c * n..(c + 1) * n] {
                *v *= k;
            }
        }
        Spectrogram {
            n_bins: n,
            frames_per_column: self.frames_per_column,
            frames: self.frames,
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame `t` holds `[t, 10 t]`: column means are then easy to state.
    fn frames(range: std::ops::Range<u64>) -> Vec<f32> {
        range.flat_map(|t| [t as f32, 10.0 * t as f32]).collect()
    }

    #[test]
    fn short_streams_keep_one_column_per_frame() {
        let mut b = SpectrogramBuilder::new(2, 8);
        b.push(&frames(0..5));
        let s = b.finish();
        assert_eq!((s.frames, s.frames_per_column, s.columns()), (5, 1, 5));
        assert_eq!(s.values, frames(0..5));
        assert_eq!(s.range(), Some((0.0, 40.0)));
    }

    #[test]
    fn long_streams_are_pooled_into_at_most_max_columns_whatever_the_chunking() {
        let whole = {
            let mut b = SpectrogramBuilder::new(2, 8);
            b.push(&frames(0..37));
            b.finish()
        };
        // 37 frames into at most 8 columns: 8 frames a column, the fifth holds frames 32..37
        assert_eq!((whole.frames, whole.frames_per_column, whole.columns()), (37, 8, 5));
        for c in 0..4 {
            let mean = (8 * c) as f32 + 3.5;
            assert!(
                (whole.values[2 * c] - mean).abs() < 1e-4,
                "column {c}: {}",
                whole.values[2 * c]
            );
            assert!((whole.values[2 * c + 1] - 10.0 * mean).abs() < 1e-3);
        }
        assert!((whole.values[8] - 34.0).abs() < 1e-4, "{}", whole.values[8]);
        let mut chunked = SpectrogramBuilder::new(2, 8);
        for start in (0..37).step_by(3) {
            chunked.push(&frames(start..(start + 3).min(37)));
        }
        assert_eq!(chunked.finish(), whole);
    }

    #[test]
    fn an_empty_stream_has_no_columns() {
        let s = SpectrogramBuilder::new(80, 100).finish();
        assert_eq!((s.columns(), s.range()), (0, None));
    }
}
