//! Bounded metric series for charts: memory stays flat however long a run is.
//!
//! A series keeps every `stride`-th point; when it reaches its capacity it drops every other
//! point and doubles the stride, so the whole history stays visible at decreasing resolution.
//! The latest point is always kept (it is what the screen's "now" refers to).

/// A decimated series of points with a hard cap on memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<T> {
    points: Vec<T>,
    /// The newest point when it is not on the stride grid.
    tail: Option<T>,
    capacity: usize,
    stride: usize,
    seen: usize,
}

impl<T: Copy> Series<T> {
    /// A series holding at most `capacity` points (at least 4).
    pub fn new(capacity: usize) -> Self {
        Self {
            points: Vec::new(),
            tail: None,
            capacity: capacity.max(4),
            stride: 1,
            seen: 0,
        }
    }

    /// Appends a point.
    pub fn push(&mut self, point: T) {
        if self.seen.is_multiple_of(self.stride) {
            self.points.push(point);
            self.tail = None;
            if self.points.len() >= self.capacity {
                let kept: Vec<_> = self.points.iter().copied().step_by(2).collect();
                self.points = kept;
                self.stride *= 2;
            }
        } else {
            self.tail = Some(point);
        }
        self.seen += 1;
    }

    /// The points to draw, oldest first, ending with the newest point pushed.
    pub fn points(&self) -> Vec<T> {
        let mut v = self.points.clone();
        v.extend(self.tail);
        v
    }

    /// The newest point.
    pub fn last(&self) -> Option<T> {
        self.tail.or_else(|| self.points.last().copied())
    }

    /// Number of points stored (not pushed).
    pub fn stored(&self) -> usize {
        self.points.len() + usize::from(self.tail.is_some())
    }

    /// True before the first point.
    pub fn is_empty(&self) -> bool {
        self.seen == 0
    }

    /// Number of points pushed.
    pub fn pushed(&self) -> usize {
        self.seen
    }
}

/// The least and the most of the values pushed into each stretch of a series, with a hard
/// cap on memory: each bucket covers `stride` consecutive points and keeps the first's place
/// and their range; when the buckets reach their capacity, neighbours merge (their range the
/// union) and the stride doubles. Unlike a decimated [`Series`], nothing pushed is lost from
/// the range: what TensorBoard's readers ask of a downsampled curve (its issue 6830).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<T> {
    buckets: Vec<(T, f64, f64)>,
    capacity: usize,
    stride: usize,
    /// Points in the newest bucket.
    filling: usize,
}

impl<T: Copy> Envelope<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            buckets: Vec::new(),
            capacity: capacity.max(4),
            stride: 1,
            filling: 0,
        }
    }

    /// Adds `value` measured at `place`; a value that is not finite leaves the range alone.
    pub fn push(&mut self, place: T, value: f64) {
        if !value.is_finite() {
            return;
        }
        match self.buckets.last_mut() {
            Some((_, lo, hi)) if self.filling < self.stride => {
                *lo = lo.min(value);
                *hi = hi.max(value);
                self.filling += 1;
            }
            _ => {
                self.buckets.push((place, value, value));
                self.filling = 1;
            }
        }
        if self.buckets.len() >= self.capacity && self.filling == self.stride {
            // An odd bucket out stays a stretch of the old stride, half of a new one.
            let odd = self.buckets.len() % 2 == 1;
            self.buckets = self
                .buckets
                .chunks(2)
                .map(|pair| {
                    let lo = pair.iter().map(|b| b.1).fold(f64::INFINITY, f64::min);
                    let hi = pair.iter().map(|b| b.2).fold(f64::NEG_INFINITY, f64::max);
                    (pair[0].0, lo, hi)
                })
                .collect();
            self.filling = if odd { self.stride } else { 2 * self.stride };
            self.stride *= 2;
        }
    }

    /// Each bucket's place (its first point) and range, oldest first.
    pub fn buckets(&self) -> &[(T, f64, f64)] {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_keeps_the_whole_range_of_every_stretch_under_its_cap() {
        for capacity in [16, 7] {
            check_envelope(capacity);
        }
    }

    fn check_envelope(capacity: usize) {
        let mut e = Envelope::new(capacity);
        let values: Vec<f64> = (0..10_000)
            .map(|i| ((i as f64) * 0.37).sin() * (1.0 + (i % 97) as f64 / 10.0))
            .collect();
        for (i, &v) in values.iter().enumerate() {
            e.push(i, v);
        }
        e.push(10_000, f64::NAN);
        let buckets = e.buckets();
        assert!(
            buckets.len() <= capacity && buckets.len() >= capacity / 2,
            "{}",
            buckets.len()
        );
        // Each bucket's range is exactly that of the values from its place to the next's.
        for (k, &(start, lo, hi)) in buckets.iter().enumerate() {
            let end = buckets.get(k + 1).map_or(values.len(), |b| b.0);
            let stretch = &values[start..end];
            assert_eq!(lo, stretch.iter().copied().fold(f64::INFINITY, f64::min));
            assert_eq!(
                hi,
                stretch.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            );
        }
        assert_eq!(buckets[0].0, 0);
    }

    #[test]
    fn a_million_points_stay_under_the_cap_and_span_the_whole_run() {
        let mut s = Series::new(256);
        for i in 0..1_000_000 {
            s.push((i as f64, (i % 7) as f64));
        }
        assert!(s.stored() <= 256, "{}", s.stored());
        let p = s.points();
        assert_eq!(p.first().unwrap().0, 0.0);
        assert_eq!(s.last().unwrap().0, 999_999.0, "the newest point is kept");
        assert!(p.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(s.pushed(), 1_000_000);
    }

    #[test]
    fn short_series_keep_every_point() {
        let mut s = Series::new(8);
        for i in 0..7 {
            s.push((i as f64, 1.0));
        }
        assert_eq!(s.points().len(), 7);
        s.push((7.0, 1.0));
        // Reaching the cap halves the stored points: 0, 2, 4, 6.
        assert_eq!(
            s.points().iter().map(|p| p.0).collect::<Vec<_>>(),
            [0.0, 2.0, 4.0, 6.0]
        );
        s.push((8.0, 1.0));
        s.push((9.0, 1.0));
        assert_eq!(
            s.points().iter().map(|p| p.0).collect::<Vec<_>>(),
            [0.0, 2.0, 4.0, 6.0, 8.0, 9.0]
        );
    }
}
