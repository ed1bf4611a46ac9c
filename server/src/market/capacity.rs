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
    /// The blocks of hours sold out throughout: the coarse map the price index keeps.
    sold_out_blocks: SoldOut,
}

impl Capacity {
    /// Nothing sold yet.
    pub fn new(quantity: u32, window: Hours) -> Self {
        Capacity {
            quantity,
            window,
            steps: vec![(window.start, 0)],
            sold_out_hours: Vec::new(),
            sold_out_blocks: SoldOut {
                // At most 9 for the longest window the exchange accepts; a window so long that
                // its blocks would not fit saturates, which only maps fewer hours (both sides
                // read this one value, and hours past the last block are never marked).
                block_hours: u16::try_from(block_hours(window)).unwrap_or(u16::MAX),
                blocks: [0; SOLD_OUT_BLOCKS / 64],
            },
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

    /// Marks the hours `[start, end)` sold out in the bitmap, and in the coarse map every block
    /// of hours that is now sold out throughout.
    fn mark_sold_out(&mut self, start: i64, end: i64) {
        if self.sold_out_hours.is_empty() {
            self.sold_out_hours = vec![0; (self.window.len() as usize).div_ceil(64)];
        }
        let (first, last) = (
            (start - self.window.start) as usize,
            (end - self.window.start) as usize,
        );
        for hour in first..last {
            self.sold_out_hours[hour / 64] |= 1 << (hour % 64);
        }
        // The block size the map was made with, which `SoldOut::blocks` reads too: both sides
        // must cut the window alike for a set bit to mean what it says.
        let block_hours = usize::from(self.sold_out_blocks.block_hours);
        let hours = self.window.len() as usize;
        let last_block = ((last - 1) / block_hours).min(SOLD_OUT_BLOCKS - 1);
        for block in first / block_hours..=last_block {
            let (low, high) = (block * block_hours, ((block + 1) * block_hours).min(hours));
            if (low..high).all(|hour| self.sold_out_hours[hour / 64] & (1 << (hour % 64)) != 0) {
                self.sold_out_blocks.blocks[block / 64] |= 1 << (block % 64);
            }
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
        if units == 0 || range.is_empty() {
            return;
        }
        self.split_at(range.start);
        if range.end < self.window.end {
            self.split_at(range.end);
        }
        // Only the steps inside the range change, each by the same units: neighbours inside it
        // stay unequal, so only its two edges can join their neighbours outside.
        let first = self.steps.partition_point(|(hour, _)| *hour < range.start);
        let mut index = first;
        while let Some(&(hour, used)) = self.steps.get(index)
            && hour < range.end
        {
            self.steps[index].1 = used + units;
            if used + units == self.quantity {
                // The steps were split at the range's end, so the next one ends this hour's
                // segment inside the range.
                let end = self
                    .steps
                    .get(index + 1)
                    .map_or(self.window.end, |(next, _)| *next);
                self.mark_sold_out(hour, end);
            }
            index += 1;
        }
        if self
            .steps
            .get(index)
            .is_some_and(|after| after.1 == self.steps[index - 1].1)
        {
            self.steps.remove(index);
        }
        if first > 0 && self.steps[first].1 == self.steps[first - 1].1 {
            self.steps.remove(first);
        }
    }

    /// A summary of the hours sold out: the blocks of hours sold out throughout (see
    /// [`SoldOut`]). Any range that touches one has nothing free; the engine keeps the summary in
    /// its price index, so sold-out offers are turned down without reading their hours.
    pub fn sold_out_summary(&self) -> SoldOut {
        self.sold_out_blocks
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

/// How many blocks of hours the coarse map of an offer's sold-out hours has: a window of up to
/// this many hours is mapped hour by hour, a longer one in blocks of a few hours (at most nine
/// for the longest window, 2,160 hours).
pub const SOLD_OUT_BLOCKS: usize = 256;

/// Hours per block of the coarse map for `window`: at least one, and few enough blocks.
fn block_hours(window: Hours) -> usize {
    (window.len() as usize).div_ceil(SOLD_OUT_BLOCKS).max(1)
}

/// A coarse map of an offer's sold-out hours, small enough to live in the price index beside
/// each offer: its window cut into at most [`SOLD_OUT_BLOCKS`] blocks of equal hours (the last
/// may be shorter), one bit per block, set when every hour of the block is sold out. A range touching a set block has a
/// sold-out hour, so nothing free; a range that touches only partly sold-out blocks is not
/// proven either way (the offer's own hours decide). It may leave sold-out hours out, never the
/// reverse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SoldOut {
    /// Hours per block (0 in an empty map, which proves nothing).
    block_hours: u16,
    blocks: [u64; SOLD_OUT_BLOCKS / 64],
}

impl SoldOut {
    /// Whether `range` (inside a window starting at `window_start`) touches a block sold out
    /// throughout.
    pub fn blocks(&self, window_start: i64, range: Hours) -> bool {
        let (Ok(start), Ok(end)) = (
            u32::try_from(range.start - window_start),
            u32::try_from(range.end - window_start),
        ) else {
            return false;
        };
        if start >= end || self.block_hours == 0 {
            return false;
        }
        let block_hours = u32::from(self.block_hours);
        let (first, last) = (
            (start / block_hours) as usize,
            ((end - 1) / block_hours) as usize,
        );
        if first >= SOLD_OUT_BLOCKS {
            return false;
        }
        let last = last.min(SOLD_OUT_BLOCKS - 1);
        (first / 64..=last / 64).any(|word| {
            let low = if word == first / 64 { first % 64 } else { 0 };
            let high = if word == last / 64 { last % 64 } else { 63 };
            let mask = (u64::MAX >> (63 - high)) & (u64::MAX << low);
            self.blocks[word] & mask != 0
        })
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
    fn the_sold_out_map_is_exact_for_a_short_window_and_only_ever_blocks_sold_out_hours() {
        // Up to 256 hours, one block per hour: the map blocks exactly the ranges with nothing free.
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
        // 600 hours: blocks of three hours. A sold-out hour alone does not fill its block, so the
        // map cannot prove it; a block sold out throughout blocks every range that touches it.
        let mut capacity = Capacity::new(2, hours(0, 600));
        capacity.take(hours(10, 11), 2);
        capacity.take(hours(30, 40), 2);
        let summary = capacity.sold_out_summary();
        assert_eq!(capacity.free(hours(10, 11)), 0);
        assert!(!summary.blocks(0, hours(10, 11)));
        assert!(summary.blocks(0, hours(31, 32)));
        assert!(summary.blocks(0, hours(20, 31)));
        assert_eq!(capacity.free(hours(39, 40)), 0);
        assert!(!summary.blocks(0, hours(39, 40)));
        assert!(!summary.blocks(0, hours(40, 600)));
        // A window far longer than any the exchange accepts cuts into blocks of 391 hours; the
        // map and the capacity cut it alike, so the block sold out throughout is exactly where
        // the map blocks.
        let mut long = Capacity::new(1, hours(0, 100_000));
        long.take(hours(391, 782), 1);
        let map = long.sold_out_summary();
        assert!(map.blocks(0, hours(391, 392)) && map.blocks(0, hours(781, 782)));
        assert!(!map.blocks(0, hours(390, 391)) && !map.blocks(0, hours(782, 783)));
        assert_eq!(long.free(hours(390, 391)), 1);
        for start in 0..600 {
            for end in (start + 1..=600).step_by(7) {
                let range = hours(start, end);
                if summary.blocks(0, range) {
                    assert_eq!(capacity.free(range), 0, "{range:?}");
                }
            }
        }
    }

    proptest::proptest! {
        /// Any sequence of sales: every range's free units agree with an hour-by-hour count, and
        /// the summary blocks exactly the ranges with nothing free (a 70-hour window is mapped
        /// hour by hour).
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
                    proptest::prop_assert_eq!(summary.blocks(1000, range), most == quantity);
                }
            }
            proptest::prop_assert_eq!(capacity.sold_out(), used.iter().all(|units| *units == quantity));
            // Each step differs from the one before: as few steps as the sales need.
            let segments: Vec<(Hours, u32)> = capacity.segments().collect();
            proptest::prop_assert!(segments.windows(2).all(|pair| pair[0].1 != pair[1].1));
        }

        /// A window longer than the map: blocks of several hours. The map blocks a range only
        /// when it has nothing free, and always when the range touches a block whose every hour
        /// is sold out.
        #[test]
        fn a_coarse_map_blocks_only_ranges_with_nothing_free(
            length in 257i64..1200,
            quantity in 1u32..4,
            sales in proptest::collection::vec((0i64..1200, 1i64..80, 1u32..4), 0..60),
            probes in proptest::collection::vec((0i64..1200, 1i64..100), 200),
        ) {
            let window = hours(5000, 5000 + length);
            let block = (length + 255) / 256;
            let mut capacity = Capacity::new(quantity, window);
            let mut used = vec![0u32; length as usize];
            for (start, hours_sold, units) in sales {
                let start = start % length;
                let range = hours(5000 + start, (5000 + start + hours_sold).min(5000 + length));
                if units <= capacity.free(range) {
                    capacity.take(range, units);
                    for hour in range.start..range.end {
                        used[(hour - 5000) as usize] += units;
                    }
                }
            }
            let summary = capacity.sold_out_summary();
            let block_sold_out = |index: i64| {
                let hours_of = (index * block)..((index + 1) * block).min(length);
                hours_of.clone().all(|hour| used[hour as usize] == quantity)
            };
            for (start, hours_asked) in probes {
                let start = start % length;
                let end = (start + hours_asked).min(length);
                let range = hours(5000 + start, 5000 + end);
                let nothing_free = used[start as usize..end as usize].contains(&quantity);
                let whole_block = (start / block..=(end - 1) / block).any(block_sold_out);
                proptest::prop_assert_eq!(summary.blocks(5000, range), whole_block);
                if whole_block {
                    proptest::prop_assert!(nothing_free);
                }
            }
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
