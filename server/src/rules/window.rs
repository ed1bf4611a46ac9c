//! When a window may still be traded: from its start hour on being the current hour or later.

/// A window (or order) whose first hour has already passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a window starts at the current hour or later")]
pub struct WindowStarted;

/// Refuses a window starting before the hour of `now` (Unix seconds); `start_hour` counts hours
/// from the epoch. Checked when an order arrives, and again when the writer applies it (the hour
/// may have turned while it waited).
pub fn check_start(start_hour: i64, now: i64) -> Result<(), WindowStarted> {
    if start_hour < now.div_euclid(3600) {
        Err(WindowStarted)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_hour_may_be_traded_and_the_one_before_may_not() {
        let now = 10 * 3600 + 1799;
        assert_eq!(check_start(10, now), Ok(()));
        assert_eq!(check_start(11, now), Ok(()));
        assert_eq!(check_start(9, now), Err(WindowStarted));
    }
}
