//! A bounded min/max envelope of a channel's waveform, for plots. Memory is fixed whatever
//! the length: when the buckets are full, neighbours merge and each bucket spans twice as many
//! samples.

const MAX_BUCKETS: usize = 2048;

#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    sample_rate_hz: u32,
    bucket_len: u64,
    /// (min, max) per full bucket.
    buckets: Vec<(f32, f32)>,
    current: Option<(f32, f32)>,
    in_current: u64,
}

impl Envelope {
    pub fn new(sample_rate_hz: u32) -> Self {
        Self {
            sample_rate_hz,
            bucket_len: 64,
            buckets: Vec::with_capacity(MAX_BUCKETS),
            current: None,
            in_current: 0,
        }
    }

    pub fn push(&mut self, mut samples: &[f32]) {
        // Bucket by bucket over slices: this runs on every sample of every call analysed.
        while !samples.is_empty() {
            let room = (self.bucket_len - self.in_current) as usize;
            let (head, rest) = samples.split_at(room.min(samples.len()));
            let (lo, hi) = head.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &s| {
                (lo.min(s), hi.max(s))
            });
            self.current = Some(match self.current {
                Some((a, b)) => (a.min(lo), b.max(hi)),
                None => (lo, hi),
            });
            self.in_current += head.len() as u64;
            if self.in_current == self.bucket_len {
                self.close_bucket();
            }
            samples = rest;
        }
    }

    fn close_bucket(&mut self) {
        if let Some(b) = self.current.take() {
            self.buckets.push(b);
        }
        self.in_current = 0;
        if self.buckets.len() == MAX_BUCKETS {
            self.buckets = self
                .buckets
                .chunks(2)
                .map(|p| {
                    p.iter()
                        .fold((f32::MAX, f32::MIN), |(lo, hi), &(a, b)| (lo.min(a), hi.max(b)))
                })
                .collect();
            self.bucket_len *= 2;
        }
    }

    /// `(time_s, min, max)` per bucket, including the partly filled last one.
    pub fn points(&self) -> Vec<(f64, f32, f32)> {
        let step = self.bucket_len as f64 / f64::from(self.sample_rate_hz);
        self.buckets
            .iter()
            .chain(self.current.iter())
            .enumerate()
            .map(|(i, &(lo, hi))| (i as f64 * step, lo, hi))
            .collect()
    }
}
