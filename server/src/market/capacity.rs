//! Units of an offer under contract, hour by hour, as a step function: a sorted list of
//! breakpoints `(hour, used)`, each valid until the next. Fills cover whole ranges of hours, so a
//! few breakpoints describe windows of thousands of hours.

use super::Hours;

/// How much of an offer is sold in each hour of its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    quantity: u32,
    window: Hours,
    /// `(first hour, units used)`, sorted by hour, the first at `window.start`.
    steps: Vec<(i64, u32)>,
}

impl Capacity {
    /// Nothing sold yet.
    pub fn new(quantity: u32, window: Hours) -> Self {
        Capacity {
            quantity,
            window,
            steps: vec![(window.start, 0)],
        }
    }

    /// Units free in EVERY hour of `range` (which must lie inside the window).
    pub fn free(&self, range: Hours) -> u32 {
        self.quantity - self.used_max(range)
    }

    /// Units free in every hour of the whole window.
    pub fn free_everywhere(&self) -> u32 {
        self.free(self.window)
    }

    /// Whether every hour is sold out.
    pub fn sold_out(&self) -> bool {
        self.steps.iter().all(|(_, used)| *used == self.quantity)
    }

    /// Whether anything was sold.
    pub fn any_sold(&self) -> bool {
        self.steps.iter().any(|(_, used)| *used > 0)
    }

    /// Most units used in any hour of `range`.
    pub fn used_max(&self, range: Hours) -> u32 {
        debug_assert!(
            self.window.contains(range),
            "{range:?} outside {:?}",
            self.window
        );
        let first = self
            .steps
            .partition_point(|(hour, _)| *hour <= range.start)
            .saturating_sub(1);
        let mut most = 0;
        for (hour, used) in &self.steps[first..] {
            if *hour >= range.end {
                break;
            }
            most = most.max(*used);
            // Nothing can be more than sold out: an offer sold out in any hour of the range is
            // refused at its first such step, however long the range.
            if most == self.quantity {
                break;
            }
        }
        most
    }

    /// Sells `units` more in every hour of `range`. Panics if that would oversell: callers check
    /// [`Capacity::free`] first, and overselling is the one thing the exchange must never do.
    pub fn take(&mut self, range: Hours, units: u32) {
        assert!(
            units <= self.free(range),
            "overselling {units} units over {range:?}"
        );
        self.split_at(range.start);
        if range.end < self.window.end {
            self.split_at(range.end);
        }
        for (hour, used) in self.steps.iter_mut() {
            if *hour >= range.start && *hour < range.end {
                *used += units;
            }
        }
        self.steps.dedup_by(|later, earlier| later.1 == earlier.1);
    }

    /// Every `(range, used)` segment with something sold, for storage and checks.
    pub fn segments(&self) -> impl Iterator<Item = (Hours, u32)> + '_ {
        self.steps.iter().enumerate().map(|(index, (start, used))| {
            let end = self
                .steps
                .get(index + 1)
                .map_or(self.window.end, |(next, _)| *next);
            (Hours { start: *start, end }, *used)
        })
    }

    fn split_at(&mut self, hour: i64) {
        let index = self.steps.partition_point(|(start, _)| *start <= hour);
        if self.steps[index - 1].0 != hour {
            let used = self.steps[index - 1].1;
            self.steps.insert(index, (hour, used));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(start: i64, end: i64) -> Hours {
        Hours { start, end }
    }

    #[test]
    fn takes_are_tracked_hour_by_hour() {
        let mut capacity = Capacity::new(10, hours(0, 100));
        assert_eq!(capacity.free(hours(0, 100)), 10);
        capacity.take(hours(10, 20), 4);
        capacity.take(hours(15, 30), 6);
        assert_eq!(capacity.free(hours(0, 10)), 10);
        assert_eq!(capacity.free(hours(10, 15)), 6);
        assert_eq!(capacity.free(hours(15, 20)), 0);
        assert_eq!(capacity.free(hours(19, 21)), 0);
        assert_eq!(capacity.free(hours(20, 30)), 4);
        assert_eq!(capacity.free(hours(30, 100)), 10);
        assert_eq!(capacity.free_everywhere(), 0);
        assert!(!capacity.sold_out());
        capacity.take(hours(0, 100), 0);
        let segments: Vec<_> = capacity.segments().collect();
        assert_eq!(
            segments,
            [
                (hours(0, 10), 0),
                (hours(10, 15), 4),
                (hours(15, 20), 10),
                (hours(20, 30), 6),
                (hours(30, 100), 0)
            ]
        );
    }

    #[test]
    fn selling_everything_sells_out() {
        let mut capacity = Capacity::new(3, hours(5, 8));
        capacity.take(hours(5, 6), 3);
        capacity.take(hours(6, 8), 3);
        assert!(capacity.sold_out());
        assert_eq!(capacity.segments().count(), 1);
    }

    #[test]
    #[should_panic(expected = "overselling")]
    fn overselling_is_refused() {
        let mut capacity = Capacity::new(3, hours(0, 4));
        capacity.take(hours(0, 2), 2);
        capacity.take(hours(1, 3), 2);
    }
}
