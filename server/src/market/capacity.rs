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
    /// One bit per hour of the window, set when the hour is sold out; empty until one is. Lets
    /// [`Capacity::free`] refuse a range touching a sold-out hour by reading a word or two
    /// instead of searching the steps (which grow long on a popular offer).
    sold_out_hours: Vec<u64>,
}

impl Capacity {
    /// Nothing sold yet.
    pub fn new(quantity: u32, window: Hours) -> Self {
        Capacity {
            quantity,
            window,
            steps: vec![(window.start, 0)],
            sold_out_hours: Vec::new(),
        }
    }

    /// Units free in EVERY hour of `range` (which must lie inside the window).
    pub fn free(&self, range: Hours) -> u32 {
        if self.any_sold_out(range) {
            return 0;
        }
        self.quantity - self.used_max(range)
    }

    /// Whether some hour of `range` is sold out, from the bitmap alone (`false` for a range
    /// outside the window, which the step walk then answers as before).
    fn any_sold_out(&self, range: Hours) -> bool {
        if self.sold_out_hours.is_empty() || range.is_empty() || !self.window.contains(range) {
            return false;
        }
        let first = (range.start - self.window.start) as usize;
        let last = (range.end - self.window.start) as usize - 1;
        let (first_word, last_word) = (first / 64, last / 64);
        (first_word..=last_word).any(|word| {
            let low = if word == first_word { first % 64 } else { 0 };
            let high = if word == last_word { last % 64 } else { 63 };
            let mask = (u64::MAX >> (63 - high)) & (u64::MAX << low);
            self.sold_out_hours[word] & mask != 0
        })
    }

    /// Marks the hours `[start, end)` sold out in the bitmap.
    fn mark_sold_out(&mut self, start: i64, end: i64) {
        if self.sold_out_hours.is_empty() {
            self.sold_out_hours = vec![0; (self.window.len() as usize).div_ceil(64)];
        }
        for hour in (start - self.window.start) as usize..(end - self.window.start) as usize {
            self.sold_out_hours[hour / 64] |= 1 << (hour % 64);
        }
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
        for index in 0..self.steps.len() {
            let (hour, used) = self.steps[index];
            if hour >= range.start && hour < range.end {
                self.steps[index].1 = used + units;
                if used + units == self.quantity && units > 0 {
                    // The steps were split at the range's end, so the next one ends this hour's
                    // segment inside the range.
                    let end = self
                        .steps
                        .get(index + 1)
                        .map_or(self.window.end, |(next, _)| *next);
                    self.mark_sold_out(hour, end);
                }
            }
        }
        self.steps.dedup_by(|later, earlier| later.1 == earlier.1);
    }

    /// A summary of the hours sold out: at most [`SOLD_OUT_KEPT`] of the longest sold-out ranges.
    /// Any range that overlaps one of them has nothing free; the engine keeps the summary in its
    /// price index, so sold-out offers are turned down without reading their steps.
    pub fn sold_out_summary(&self) -> SoldOut {
        let mut summary = SoldOut::default();
        let mut open: Option<i64> = None;
        for (index, (hour, used)) in self.steps.iter().enumerate() {
            let full = *used == self.quantity;
            match (open, full) {
                (None, true) => open = Some(*hour),
                (Some(start), false) => {
                    summary.keep(self.window.start, Hours { start, end: *hour });
                    open = None;
                }
                _ => {}
            }
            if index + 1 == self.steps.len()
                && let Some(start) = open
            {
                summary.keep(
                    self.window.start,
                    Hours {
                        start,
                        end: self.window.end,
                    },
                );
            }
        }
        summary
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

/// How many sold-out ranges an offer's summary keeps.
pub const SOLD_OUT_KEPT: usize = 3;

/// Some of an offer's sold-out hours, as ranges of hours counted from its window's start: compact
/// enough to live in the price index beside each offer. It may leave sold-out hours out (it
/// keeps the longest ranges), never the reverse, so it can only prove that a range has nothing
/// free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SoldOut {
    /// `[start, end)` offsets from the window's start; the first `len` are meaningful.
    ranges: [(u32, u32); SOLD_OUT_KEPT],
    len: u8,
}

impl SoldOut {
    /// Whether `range` (inside a window starting at `window_start`) touches a kept sold-out hour.
    pub fn blocks(&self, window_start: i64, range: Hours) -> bool {
        let (Ok(start), Ok(end)) = (
            u32::try_from(range.start - window_start),
            u32::try_from(range.end - window_start),
        ) else {
            return false;
        };
        self.ranges[..usize::from(self.len)]
            .iter()
            .any(|(sold_start, sold_end)| start < *sold_end && *sold_start < end)
    }

    /// Keeps `range`, dropping the shortest kept range when full (a longer range blocks more).
    fn keep(&mut self, window_start: i64, range: Hours) {
        let (Ok(start), Ok(end)) = (
            u32::try_from(range.start - window_start),
            u32::try_from(range.end - window_start),
        ) else {
            return;
        };
        let length = |(start, end): (u32, u32)| end - start;
        let len = usize::from(self.len);
        if len < SOLD_OUT_KEPT {
            self.ranges[len] = (start, end);
            self.len += 1;
        } else if let Some(shortest) = (0..len).min_by_key(|index| length(self.ranges[*index]))
            && length(self.ranges[shortest]) < end - start
        {
            self.ranges[shortest] = (start, end);
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
        // Every range agrees with an hour-by-hour count.
        let used = |hour: i64| match hour {
            10..15 => 4,
            15..20 => 10,
            20..30 => 6,
            _ => 0,
        };
        for start in 0..100 {
            for end in start + 1..=100 {
                let most = (start..end).map(used).max().expect("a non-empty range");
                assert_eq!(
                    capacity.free(hours(start, end)),
                    10 - most,
                    "{start}..{end}"
                );
            }
        }
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
    fn the_sold_out_summary_blocks_exactly_the_sold_out_hours_it_keeps() {
        let mut capacity = Capacity::new(4, hours(100, 200));
        assert!(!capacity.sold_out_summary().blocks(100, hours(100, 200)));
        capacity.take(hours(110, 120), 4);
        capacity.take(hours(130, 131), 4);
        capacity.take(hours(150, 170), 3);
        capacity.take(hours(190, 200), 4);
        let summary = capacity.sold_out_summary();
        for start in 100..200 {
            for end in start + 1..=200 {
                let range = hours(start, end);
                assert_eq!(
                    summary.blocks(100, range),
                    capacity.free(range) == 0,
                    "{range:?}"
                );
            }
        }
        // A fourth range: the shortest one (130..131) is dropped; what is kept still only blocks
        // sold-out hours.
        capacity.take(hours(140, 145), 4);
        let summary = capacity.sold_out_summary();
        assert!(!summary.blocks(100, hours(130, 131)));
        assert!(summary.blocks(100, hours(142, 143)));
        for start in 100..200 {
            for end in start + 1..=200 {
                let range = hours(start, end);
                if summary.blocks(100, range) {
                    assert_eq!(capacity.free(range), 0, "{range:?}");
                }
            }
        }
    }

    proptest::proptest! {
        /// Any sequence of sales: every range's free units agree with an hour-by-hour count, and
        /// the summary only ever blocks ranges with nothing free.
        #[test]
        fn free_units_agree_with_an_hour_by_hour_count(
            quantity in 1u32..6,
            sales in proptest::collection::vec((0i64..70, 1i64..30, 1u32..4), 0..40),
        ) {
            let window = hours(1000, 1070);
            let mut capacity = Capacity::new(quantity, window);
            let mut used = [0u32; 70];
            for (start, length, units) in sales {
                let range = hours(1000 + start, (1000 + start + length).min(1070));
                if units <= capacity.free(range) {
                    capacity.take(range, units);
                    for hour in range.start..range.end {
                        used[(hour - 1000) as usize] += units;
                    }
                }
            }
            let summary = capacity.sold_out_summary();
            for start in 0..70 {
                for end in start + 1..=70 {
                    let range = hours(1000 + start, 1000 + end);
                    let most = used[start as usize..end as usize].iter().max().copied().expect("a non-empty range");
                    proptest::prop_assert_eq!(capacity.free(range), quantity - most);
                    if summary.blocks(1000, range) {
                        proptest::prop_assert_eq!(most, quantity);
                    }
                }
            }
            proptest::prop_assert_eq!(capacity.sold_out(), used.iter().all(|units| *units == quantity));
        }
    }

    #[test]
    #[should_panic(expected = "overselling")]
    fn overselling_is_refused() {
        let mut capacity = Capacity::new(3, hours(0, 4));
        capacity.take(hours(0, 2), 2);
        capacity.take(hours(1, 3), 2);
    }
}
