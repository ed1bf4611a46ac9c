//! An ordered map kept as a list of short sorted runs: what the price index of each market is
//! made of. A scan of the book walks its entries in order, dozens per incoming bid, most of them
//! turned down from the entry alone, so walking must cost little: here the next entry is the next
//! element of a slice, and only every few dozen entries the next run. Inserting or removing finds
//! the run through the runs' last keys (one contiguous array) and shifts at most one run.

/// Most entries in one run; a run that grows past it is split in two.
const RUN_MAX: usize = 32;

/// Runs shorter than this are joined with a neighbour when both fit in one.
const RUN_MIN: usize = RUN_MAX / 4;

/// An ordered map from `K` to `V` (see the module's documentation).
#[derive(Debug, Clone)]
pub struct Chunked<K, V> {
    /// Each run's last key, in order: the run that holds or would hold a key is the first whose
    /// last key is not below it (the last run for a key beyond every run).
    lasts: Vec<K>,
    /// The runs, each sorted by key and never empty, every key of a run below every key of the
    /// next.
    runs: Vec<Vec<(K, V)>>,
}

impl<K, V> Default for Chunked<K, V> {
    fn default() -> Self {
        Chunked {
            lasts: Vec::new(),
            runs: Vec::new(),
        }
    }
}

impl<K: Ord + Copy, V> Chunked<K, V> {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The run that holds or would hold `key`; the map has at least one run.
    fn run_of(&self, key: &K) -> usize {
        self.lasts
            .partition_point(|last| last < key)
            .min(self.runs.len() - 1)
    }

    /// Puts `value` under `key`; answers the value it replaced, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if self.runs.is_empty() {
            let mut run = Vec::with_capacity(RUN_MAX + 1);
            run.push((key, value));
            self.runs.push(run);
            self.lasts.push(key);
            return None;
        }
        let index = self.run_of(&key);
        let run = &mut self.runs[index];
        let at = match run.binary_search_by(|(other, _)| other.cmp(&key)) {
            Ok(at) => return Some(std::mem::replace(&mut run[at].1, value)),
            Err(at) => at,
        };
        run.insert(at, (key, value));
        if at + 1 == run.len() {
            // Only past the last run's last key: every other run's last key is not below `key`.
            self.lasts[index] = key;
        }
        if run.len() > RUN_MAX {
            let mut upper = Vec::with_capacity(RUN_MAX + 1);
            upper.extend(run.drain(run.len() / 2..));
            let lower_last = run.last().expect("half of a full run").0;
            let upper_last = self.lasts[index];
            self.lasts[index] = lower_last;
            self.lasts.insert(index + 1, upper_last);
            self.runs.insert(index + 1, upper);
        }
        None
    }

    /// Takes the entry under `key` out; answers its value, if there was one.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        if self.runs.is_empty() {
            return None;
        }
        let index = self.run_of(key);
        let run = &mut self.runs[index];
        let at = run.binary_search_by(|(other, _)| other.cmp(key)).ok()?;
        let (_, value) = run.remove(at);
        if run.is_empty() {
            self.runs.remove(index);
            self.lasts.remove(index);
            return Some(value);
        }
        if at == run.len() {
            self.lasts[index] = run[at - 1].0;
        }
        if run.len() < RUN_MIN {
            self.join_with_a_neighbour(index);
        }
        Some(value)
    }

    /// Joins the short run `index` with the next run, or else the one before, if both fit in one.
    fn join_with_a_neighbour(&mut self, index: usize) {
        let fits = |a: usize, b: usize| self.runs[a].len() + self.runs[b].len() <= RUN_MAX;
        let (lower, upper) = if index + 1 < self.runs.len() && fits(index, index + 1) {
            (index, index + 1)
        } else if index > 0 && fits(index - 1, index) {
            (index - 1, index)
        } else {
            return;
        };
        let moved = self.runs.remove(upper);
        self.runs[lower].extend(moved);
        self.lasts[lower] = self.lasts.remove(upper);
    }

    /// The value under `key`, to change.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        if self.runs.is_empty() {
            return None;
        }
        let index = self.run_of(key);
        let run = &mut self.runs[index];
        let at = run.binary_search_by(|(other, _)| other.cmp(key)).ok()?;
        Some(&mut run[at].1)
    }

    /// The entries in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            runs: self.runs.iter(),
            current: [].iter(),
        }
    }
}

/// The entries of a [`Chunked`] map in key order.
#[derive(Debug)]
pub struct Iter<'a, K, V> {
    runs: std::slice::Iter<'a, Vec<(K, V)>>,
    current: std::slice::Iter<'a, (K, V)>,
}

impl<K, V> Clone for Iter<'_, K, V> {
    fn clone(&self) -> Self {
        Iter {
            runs: self.runs.clone(),
            current: self.current.clone(),
        }
    }
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((key, value)) = self.current.next() {
                return Some((key, value));
            }
            self.current = self.runs.next()?.iter();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u32),
        Remove(u16),
        Change(u16, u32),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        // Keys from a small range, so that inserts replace and removes find entries often; runs
        // of inserts long enough to split runs, of removes long enough to join them.
        prop_oneof![
            4 => (0u16..400, any::<u32>()).prop_map(|(key, value)| Op::Insert(key, value)),
            3 => (0u16..400).prop_map(Op::Remove),
            1 => (0u16..400, any::<u32>()).prop_map(|(key, value)| Op::Change(key, value)),
        ]
    }

    proptest::proptest! {
        /// Any sequence of inserts, removes and changes leaves the same entries, in the same
        /// order, as the standard library's ordered map, and every run within its bounds.
        #[test]
        fn behaves_as_an_ordered_map(ops in proptest::collection::vec(op(), 0..3000)) {
            let mut map = Chunked::default();
            let mut model = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(key, value) => {
                        proptest::prop_assert_eq!(map.insert(key, value), model.insert(key, value));
                    }
                    Op::Remove(key) => {
                        proptest::prop_assert_eq!(map.remove(&key), model.remove(&key));
                    }
                    Op::Change(key, value) => {
                        if let Some(stored) = map.get_mut(&key) {
                            *stored = value;
                        }
                        if let Some(stored) = model.get_mut(&key) {
                            *stored = value;
                        }
                    }
                }
                proptest::prop_assert_eq!(map.iter().count(), model.len());
                proptest::prop_assert_eq!(map.is_empty(), model.is_empty());
            }
            proptest::prop_assert!(map.iter().eq(model.iter()));
            proptest::prop_assert_eq!(map.runs.len(), map.lasts.len());
            for (run, last) in map.runs.iter().zip(&map.lasts) {
                proptest::prop_assert!(!run.is_empty() && run.len() <= RUN_MAX);
                proptest::prop_assert_eq!(run.last().map(|(key, _)| *key), Some(*last));
            }
            // A walk that stops part-way resumes where it stopped, copied or not.
            let mut walk = map.iter();
            let first: Vec<_> = walk.by_ref().take(model.len() / 2).collect();
            let rest: Vec<_> = walk.clone().collect();
            proptest::prop_assert_eq!(first.len() + rest.len(), model.len());
            proptest::prop_assert!(first.into_iter().chain(rest).eq(model.iter()));
        }
    }
}
