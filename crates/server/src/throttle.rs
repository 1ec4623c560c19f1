//! Failed-authentication throttling per client address, in fixed one-minute windows.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

const WINDOW_SECS: i64 = 60;
/// Beyond this many tracked addresses, windows that have ended are dropped.
const PRUNE_ABOVE: usize = 100_000;

#[derive(Clone, Copy)]
struct Window {
    start: i64,
    failures: u32,
}

pub struct Throttle {
    limit: u32,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl Throttle {
    pub fn new(limit: u32) -> Throttle {
        Throttle { limit, windows: Mutex::new(HashMap::new()) }
    }

    /// Seconds until `ip` may try again, when it has used up its failures.
    pub fn retry_after(&self, ip: IpAddr, now: i64) -> Option<u64> {
        let windows = self.windows.lock().ok()?;
        let window = windows.get(&ip)?;
        let ends = window.start + WINDOW_SECS;
        (window.failures >= self.limit && now < ends).then(|| (ends - now).max(1) as u64)
    }

    pub fn record_failure(&self, ip: IpAddr, now: i64) {
        let Ok(mut windows) = self.windows.lock() else { return };
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, window| now < window.start + WINDOW_SECS);
        }
        let window = windows.entry(ip).or_insert(Window { start: now, failures: 0 });
        if now >= window.start + WINDOW_SECS {
            *window = Window { start: now, failures: 0 };
        }
        window.failures = window.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_blocks_for_the_rest_of_the_window_then_resets() {
        let throttle = Throttle::new(3);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        for second in 0..3 {
            assert_eq!(throttle.retry_after(ip, 100 + second), None);
            throttle.record_failure(ip, 100 + second);
        }
        assert_eq!(throttle.retry_after(ip, 103), Some(57));
        assert_eq!(throttle.retry_after(other, 103), None);
        assert_eq!(throttle.retry_after(ip, 160), None);
        throttle.record_failure(ip, 160);
        assert_eq!(throttle.retry_after(ip, 161), None);
    }
}
