//! Reads from a PostgreSQL streaming replica (`SUANLI_READ_DATABASE_URL`): the regulators'
//! exports and statistics, the audit log, candles and the price index — reads that may be a few
//! seconds old and that can be heavy.
//!
//! Staleness bound: the lease holder renews the matching lease every 0.3 × `SUANLI_LEASE_TIMEOUT_S`
//! (`matching_lease.renewed_at`, written on the primary). On the replica, `now − renewed_at` is
//! therefore an upper bound of how far behind it is (it has replayed everything up to that
//! renewal). A checker thread reads it every [`CHECK_EVERY`]; while it is at most
//! `SUANLI_READ_LAG_MS_MAX` (which must exceed the renewal interval: checked at start), those
//! reads go to the replica; otherwise (lagging, unreachable, not checked for a while, or no node
//! renewing at all) to the primary. A request can thus see data at most
//! `SUANLI_READ_LAG_MS_MAX` + [`CHECK_EVERY`] old. The bound compares the primary's clock (which
//! wrote `renewed_at`) with the replica's: on two machines they must agree (NTP). A long export
//! on a hot standby may be cancelled by a replay conflict (PostgreSQL's `max_standby_*_delay`);
//! the client then sees the export end early and retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use crate::db::{self, DbPool};
use crate::telemetry::Metrics;

/// How often the replica's lag is read.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);

/// The replica, and whether it is fresh enough to read from.
pub struct Replica {
    /// For short reads.
    pub pool: DbPool,
    /// For the regulators' streamed exports (as many as the primary's export pool).
    pub exports: DbPool,
    fresh: AtomicBool,
    /// The lag at the last check, milliseconds (-1: not reachable).
    lag_ms: AtomicI64,
    /// When the last check ended, milliseconds after `started`: a checker stuck on a replica that
    /// stopped answering must not leave it marked fresh.
    checked_ms: AtomicI64,
    started: std::time::Instant,
}

impl Replica {
    /// Connects lazily to `url` and starts the thread that checks its lag against `lag_ms_max`.
    pub fn start(
        url: &str,
        pool_size: u32,
        exports: u32,
        connect_timeout_ms: u64,
        lag_ms_max: u64,
    ) -> anyhow::Result<Arc<Self>> {
        let replica = Arc::new(Replica {
            pool: db::connect_lazily(url, pool_size.max(1), connect_timeout_ms)?,
            exports: db::connect_lazily(url, exports.max(1), connect_timeout_ms)?,
            fresh: AtomicBool::new(false),
            lag_ms: AtomicI64::new(-1),
            checked_ms: AtomicI64::new(0),
            started: std::time::Instant::now(),
        });
        let checked = Arc::downgrade(&replica);
        let lag_ms_max = i64::try_from(lag_ms_max).unwrap_or(i64::MAX);
        std::thread::Builder::new()
            .name("suanli-replica-lag".into())
            .spawn(move || {
                while let Some(replica) = checked.upgrade() {
                    replica.check(lag_ms_max);
                    drop(replica);
                    std::thread::sleep(CHECK_EVERY);
                }
            })?;
        Ok(replica)
    }

    fn check(&self, lag_ms_max: i64) {
        let lag = self
            .pool
            .get()
            .ok()
            .and_then(|mut connection| db::lease::renewed_ms_ago(&mut connection).ok());
        let fresh = lag.is_some_and(|lag| lag <= lag_ms_max);
        if fresh != self.fresh.swap(fresh, Ordering::SeqCst) {
            if fresh {
                tracing::info!(lag_ms = ?lag, "the read replica is fresh: it serves reads");
            } else {
                tracing::warn!(lag_ms = ?lag, "the read replica lags or is unreachable: reads go to the primary");
            }
        }
        self.lag_ms.store(lag.unwrap_or(-1), Ordering::SeqCst);
        self.checked_ms
            .store(self.started.elapsed().as_millis() as i64, Ordering::SeqCst);
    }

    /// Whether reads go to the replica now: fresh at a check made within the last second.
    pub fn is_fresh(&self) -> bool {
        let since_check =
            self.started.elapsed().as_millis() as i64 - self.checked_ms.load(Ordering::SeqCst);
        self.fresh.load(Ordering::SeqCst) && since_check < 4 * CHECK_EVERY.as_millis() as i64
    }

    /// The lag at the last check, milliseconds; `None` when it was not reachable.
    pub fn lag_ms(&self) -> Option<i64> {
        Some(self.lag_ms.load(Ordering::SeqCst)).filter(|lag| *lag >= 0)
    }
}

/// The pool a replica-tolerant read uses: the replica's while it is fresh, else the primary's.
/// Counts which, as `suanli_events_total{kind="read_replica"|"read_primary"}`.
pub fn pool_for_read(
    replica: Option<&Replica>,
    primary: &DbPool,
    exports: bool,
    metrics: &Metrics,
) -> DbPool {
    match replica {
        Some(replica) if replica.is_fresh() => {
            metrics.events.with_label_values(&["read_replica"]).inc();
            if exports {
                replica.exports.clone()
            } else {
                replica.pool.clone()
            }
        }
        Some(_) => {
            metrics.events.with_label_values(&["read_primary"]).inc();
            primary.clone()
        }
        None => primary.clone(),
    }
}
