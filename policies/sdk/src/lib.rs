//! The guest SDK for hub policies.
//!
//! A hub writes its policy as a plain Rust function over the types that `wit-bindgen` generates
//! from `policies/wit/policy.wit` (WIT package `suanli:policy@0.3.0`), tests it natively with
//! `cargo test`, and exports it with one macro:
//!
//! ```text
//! suanli_policy_sdk::pricing_policy!(price);
//!
//! fn price(input: &MatchInput) -> Result<Quote, Rejection> { … }
//! ```
//!
//! The macro generates the bindings in the calling crate (so `MatchInput`, `Quote`, `Rejection`,
//! `Denial`, `Side`, `HubFacts`… live at the crate root) and exports it for every pair of a
//! batch: the exchange hands a hub's policy all candidate pairs of an incoming order at once, and
//! the function must answer each from its own input alone (decisions are replayed one by one).
//! The crate must depend on `wit-bindgen` and sit two folders below `policies/` (as
//! `policies/examples/*` do). A policy written against version 0.2 (one pair per call) or 0.1
//! (`policies/wit-0.1/`, prices as decimal strings) keeps building with
//! `pricing_policy!(price, wit = "0.2")` or `wit = "0.1"` (or `compliance_policy!`); the exchange
//! accepts all three versions.
//!
//! Policies import nothing: no clock, no randomness, no I/O. Money arrives as whole millionths
//! (`micros`) and a quote's price leaves as a decimal string: [`format_micros`] writes one, and
//! [`micros`] reads a decimal string into millionths, so a policy never needs floating point.

/// The policy's memory allocator in the sandbox: a bump allocator.
///
/// Every decision runs in a fresh instance that is thrown away afterwards, so memory never needs
/// to be given back to a heap: an allocation moves a pointer forward through the linear memory
/// the module starts with (past its stack and data), and only grows the memory when that runs
/// out. The last allocation is given back, or grown in place, when freed or reallocated (so a
/// string built by pushing does not leave copies behind). Compared with Rust's default (dlmalloc,
/// which takes every block from `memory.grow`), a decision costs a few dozen instructions per
/// allocation instead of hundreds, and the memory does not grow, so the host need not change the
/// memory's protection on every decision. A decision that allocates more than the sandbox's
/// memory limit in all fails with a memory fault, as it would with any allocator.
///
/// On by default (feature `bump-allocator`); a policy that brings its own `#[global_allocator]`
/// turns the SDK's default features off.
#[cfg(all(target_arch = "wasm32", feature = "bump-allocator"))]
mod bump {
    #![allow(unsafe_code)]

    use core::alloc::{GlobalAlloc, Layout};
    use core::sync::atomic::{AtomicUsize, Ordering};

    const PAGE: usize = 65_536;

    unsafe extern "C" {
        /// The first byte after the module's stack and data (set by the linker).
        static __heap_base: u8;
    }

    struct Bump {
        /// The next free byte; 0 before the first allocation.
        next: AtomicUsize,
        /// Where the last allocation starts (it alone can be given back or grown in place).
        last: AtomicUsize,
    }

    #[global_allocator]
    static ALLOCATOR: Bump = Bump {
        next: AtomicUsize::new(0),
        last: AtomicUsize::new(0),
    };

    impl Bump {
        /// Makes `[.., end)` addressable, growing the memory if needed.
        fn reach(end: usize) -> bool {
            let size = core::arch::wasm32::memory_size(0) * PAGE;
            end <= size
                || core::arch::wasm32::memory_grow(0, (end - size).div_ceil(PAGE)) != usize::MAX
        }
    }

    // SAFETY: WebAssembly policies are single-threaded; every block handed out lies inside the
    // linear memory, past the stack and data, and is never handed out twice while live.
    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let mut next = self.next.load(Ordering::Relaxed);
            if next == 0 {
                // Only the symbol's address is taken, never its value.
                next = core::ptr::addr_of!(__heap_base) as usize;
            }
            let start = (next + layout.align() - 1) & !(layout.align() - 1);
            let Some(end) = start.checked_add(layout.size()) else {
                return core::ptr::null_mut();
            };
            if !Self::reach(end) {
                return core::ptr::null_mut();
            }
            self.next.store(end, Ordering::Relaxed);
            self.last.store(start, Ordering::Relaxed);
            start as *mut u8
        }

        unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
            if ptr as usize == self.last.load(Ordering::Relaxed) {
                self.next.store(ptr as usize, Ordering::Relaxed);
                self.last.store(0, Ordering::Relaxed);
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if ptr as usize == self.last.load(Ordering::Relaxed) {
                let Some(end) = (ptr as usize).checked_add(new_size) else {
                    return core::ptr::null_mut();
                };
                if !Self::reach(end) {
                    return core::ptr::null_mut();
                }
                self.next.store(end, Ordering::Relaxed);
                return ptr;
            }
            // SAFETY: the caller's contract for `realloc`, passed on.
            let new =
                unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
            if !new.is_null() {
                // SAFETY: both blocks are live and distinct; the old one holds `layout.size()` bytes.
                unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            }
            new
        }
    }
}

/// Generates the `pricing` world's bindings in the calling crate and exports `$function`
/// (`fn(&MatchInput) -> Result<Quote, Rejection>`): as `price-all` (every pair of a batch, in
/// order) for the current version 0.3 of the interface; `wit = "0.2"` or `wit = "0.1"` builds
/// against an earlier version instead, whose `price` export takes one pair per call.
#[macro_export]
macro_rules! pricing_policy {
    ($function:path) => {
        wit_bindgen::generate!({ world: "pricing", path: "../../wit" });
        pub use suanli::policy::types::*;

        struct Policy;

        impl Guest for Policy {
            fn price_all(inputs: Vec<MatchInput>) -> Vec<Result<Quote, Rejection>> {
                inputs.iter().map(|input| $function(input)).collect()
            }
        }

        export!(Policy);
    };
    ($function:path, wit = "0.2") => {
        wit_bindgen::generate!({ world: "pricing", path: "../../wit-0.2" });
        $crate::pricing_policy!(@one_per_call $function);
    };
    ($function:path, wit = "0.1") => {
        wit_bindgen::generate!({ world: "pricing", path: "../../wit-0.1" });
        $crate::pricing_policy!(@one_per_call $function);
    };
    (@one_per_call $function:path) => {
        pub use suanli::policy::types::*;

        struct Policy;

        impl Guest for Policy {
            fn price(input: MatchInput) -> Result<Quote, Rejection> {
                $function(&input)
            }
        }

        export!(Policy);
    };
}

/// Generates the `compliance` world's bindings in the calling crate and exports `$function`
/// (`fn(&MatchInput) -> Result<(), Denial>`): as `check-all` (every pair of a batch, in order)
/// for the current version 0.3 of the interface; `wit = "0.2"` or `wit = "0.1"` builds against an
/// earlier version instead, whose `check` export takes one pair per call.
#[macro_export]
macro_rules! compliance_policy {
    ($function:path) => {
        wit_bindgen::generate!({ world: "compliance", path: "../../wit" });
        pub use suanli::policy::types::*;

        struct Policy;

        impl Guest for Policy {
            fn check_all(inputs: Vec<MatchInput>) -> Vec<Result<(), Denial>> {
                inputs.iter().map(|input| $function(input)).collect()
            }
        }

        export!(Policy);
    };
    ($function:path, wit = "0.2") => {
        wit_bindgen::generate!({ world: "compliance", path: "../../wit-0.2" });
        $crate::compliance_policy!(@one_per_call $function);
    };
    ($function:path, wit = "0.1") => {
        wit_bindgen::generate!({ world: "compliance", path: "../../wit-0.1" });
        $crate::compliance_policy!(@one_per_call $function);
    };
    (@one_per_call $function:path) => {
        pub use suanli::policy::types::*;

        struct Policy;

        impl Guest for Policy {
            fn check(input: MatchInput) -> Result<(), Denial> {
                $function(&input)
            }
        }

        export!(Policy);
    };
}

/// A decimal string (`"12.5"`, `"0.034000"`) as whole millionths; `None` if it is not a plain
/// non-negative decimal with at most 6 fractional digits.
pub fn micros(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || fraction.len() > 6
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let mut fraction_micros: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    for _ in fraction.len()..6 {
        fraction_micros *= 10;
    }
    whole.checked_mul(1_000_000)?.checked_add(fraction_micros)
}

/// Whole millionths as a decimal string with 6 fractional digits (`12500000` → `"12.500000"`).
pub fn format_micros(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let value = value.unsigned_abs();
    format!("{sign}{}.{:06}", value / 1_000_000, value % 1_000_000)
}

/// `value × basis_points / 10 000`, rounded down.
pub fn basis_points(value: i64, basis_points: i64) -> i64 {
    value.saturating_mul(basis_points) / 10_000
}

/// Hour of the day (0-23) in China Standard Time (UTC+8) of a Unix time in seconds.
pub fn china_hour(unix_seconds: i64) -> u32 {
    ((unix_seconds + 8 * 3600).rem_euclid(86_400) / 3600) as u32
}

/// Whether any hour of `[start, end)` (Unix seconds) falls between `from` and `to` o'clock China
/// time (`from` inclusive, `to` exclusive; `from > to` wraps past midnight).
pub fn touches_hours(start: i64, end: i64, from: u32, to: u32) -> bool {
    let mut at = start;
    // A window longer than a day touches every hour.
    if end - start >= 86_400 {
        return true;
    }
    while at < end {
        let hour = china_hour(at);
        let inside = if from <= to {
            hour >= from && hour < to
        } else {
            hour >= from || hour < to
        };
        if inside {
            return true;
        }
        at += 3600;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_trip_through_micros() {
        for (text, value) in [
            ("12.5", 12_500_000),
            ("0.000001", 1),
            ("7", 7_000_000),
            ("0.034000", 34_000),
        ] {
            assert_eq!(micros(text), Some(value), "{text}");
        }
        for bad in ["", ".5", "1.2345678", "-1", "1e3", "abc", "1.2.3"] {
            assert_eq!(micros(bad), None, "{bad}");
        }
        assert_eq!(format_micros(12_500_000), "12.500000");
        assert_eq!(format_micros(1), "0.000001");
    }

    #[test]
    fn hours_are_counted_in_china_time() {
        // 2026-11-28T00:00:00Z is 08:00 in Beijing.
        let midnight_utc = 1_795_824_000;
        assert_eq!(china_hour(midnight_utc), 8);
        assert!(touches_hours(midnight_utc, midnight_utc + 3600, 8, 22));
        assert!(!touches_hours(
            midnight_utc + 14 * 3600,
            midnight_utc + 20 * 3600,
            8,
            22
        ));
        assert!(touches_hours(
            midnight_utc + 14 * 3600,
            midnight_utc + 20 * 3600,
            22,
            8
        ));
    }
}
