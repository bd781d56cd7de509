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

#[cfg(test)]
mod tests {
    use super::*;

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
