//! An ordered map kept as short sorted runs: what the price index of each market is made of. A
//! scan of the book walks its entries in order, dozens per incoming bid, most of them turned down
//! from the entry alone, so walking must cost little: here the next entry is the next element of
//! a slice, and only every few dozen entries the next run. The runs themselves sit in an ordered
//! map under their last keys, so inserting or removing finds its run in logarithmic time and
//! shifts at most one run, however large the market grows.

use std::collections::BTreeMap;

/// Most entries in one run; a run that grows past it is split in two.
const RUN_MAX: usize = 32;

/// Runs shorter than this are joined with a neighbour when both fit in one.
const RUN_MIN: usize = RUN_MAX / 4;

/// An ordered map from `K` to `V` (see the module's documentation).
#[derive(Debug, Clone)]
pub struct Chunked<K, V> {
    /// The runs under their last keys: each sorted by key and never empty, every key of a run
    /// below every key of the next. The run that holds or would hold a key is the first whose last
    /// key is not below it (the last run for a key beyond every run).
    runs: BTreeMap<K, Vec<(K, V)>>,
}

impl<K, V> Default for Chunked<K, V> {
    fn default() -> Self {
        Chunked {
            runs: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy, V> Chunked<K, V> {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The last key of the run that holds or would hold `key`, if the map has any run.
    fn run_of(&self, key: &K) -> Option<K> {
        self.runs
            .range(key..)
            .next()
            .or_else(|| self.runs.last_key_value())
            .map(|(last, _)| *last)
    }

    /// Takes the run under `last` out, to put it back under its (possibly new) last key.
    fn take_run(&mut self, last: &K) -> Vec<(K, V)> {
        self.runs.remove(last).expect("a run under its last key")
    }

    /// Puts `run` (not empty) back under its last key.
    fn put_run(&mut self, run: Vec<(K, V)>) {
        let last = run.last().expect("runs are never empty").0;
        self.runs.insert(last, run);
    }

    /// Puts `value` under `key`; answers the value it replaced, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let Some(last) = self.run_of(&key) else {
            let mut run = Vec::with_capacity(RUN_MAX + 1);
            run.push((key, value));
            self.runs.insert(key, run);
            return None;
        };
        let run = self.runs.get_mut(&last).expect("the run found");
        let at = match run.binary_search_by(|(other, _)| other.cmp(&key)) {
            Ok(at) => return Some(std::mem::replace(&mut run[at].1, value)),
            Err(at) => at,
        };
        run.insert(at, (key, value));
        // Past the run's last key (only ever in the last run), or too long: under new keys.
        if at + 1 == run.len() || run.len() > RUN_MAX {
            let mut run = self.take_run(&last);
            if run.len() > RUN_MAX {
                let mut upper = Vec::with_capacity(RUN_MAX + 1);
                upper.extend(run.drain(run.len() / 2..));
                self.put_run(upper);
            }
            self.put_run(run);
        }
        None
    }

    /// Takes the entry under `key` out; answers its value, if there was one.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let last = self.run_of(key)?;
        let run = self.runs.get_mut(&last).expect("the run found");
        let at = run.binary_search_by(|(other, _)| other.cmp(key)).ok()?;
        let (_, value) = run.remove(at);
        if at == run.len() || run.len() < RUN_MIN {
            let run = self.take_run(&last);
            if !run.is_empty() {
                self.put_back_joined(run);
            }
        }
        Some(value)
    }

    /// Puts `run` back, joined with the run after it, or else the one before, when it is short
    /// and both fit in one.
    fn put_back_joined(&mut self, mut run: Vec<(K, V)>) {
        if run.len() < RUN_MIN {
            let last = run.last().expect("runs are never empty").0;
            let next = self
                .runs
                .range(last..)
                .next()
                .filter(|(_, next)| run.len() + next.len() <= RUN_MAX)
                .map(|(key, _)| *key);
            let before = || {
                self.runs
                    .range(..last)
                    .next_back()
                    .filter(|(_, before)| run.len() + before.len() <= RUN_MAX)
                    .map(|(key, _)| *key)
            };
            if let Some(next) = next {
                run.extend(self.take_run(&next));
            } else if let Some(before) = before() {
                let mut joined = self.take_run(&before);
                joined.append(&mut run);
                run = joined;
            }
        }
        self.put_run(run);
    }

    /// The value under `key`, to change.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let last = self.run_of(key)?;
        let run = self.runs.get_mut(&last).expect("the run found");
        let at = run.binary_search_by(|(other, _)| other.cmp(key)).ok()?;
        Some(&mut run[at].1)
    }

    /// The entries in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            runs: self.runs.values(),
            current: [].iter(),
        }
    }
}

/// The entries of a [`Chunked`] map in key order.
#[derive(Debug)]
pub struct Iter<'a, K, V> {
    runs: std::collections::btree_map::Values<'a, K, Vec<(K, V)>>,
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
            for (last, run) in &map.runs {
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
