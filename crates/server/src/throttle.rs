//! Failed-authentication throttling per client address, in fixed one-minute windows.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

const WINDOW_SECS: i64 = 60;
/// A safety valve: past this many tracked addresses, ended windows are dropped in the
/// request path too (normally a timer does it, see `prune`).
const PRUNE_ABOVE: usize = 1_000_000;

/// The unit that is throttled: an IPv4 address, or the /64 an IPv6 address is in (one
/// host usually holds a whole /64).
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
}

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
        let window = windows.get(&bucket(ip))?;
        let ends = window.start + WINDOW_SECS;
        (window.failures >= self.limit && now < ends).then(|| (ends - now).max(1) as u64)
    }

    pub fn record_failure(&self, ip: IpAddr, now: i64) {
        let Ok(mut windows) = self.windows.lock() else { return };
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, window| now < window.start + WINDOW_SECS);
        }
        let window = windows.entry(bucket(ip)).or_insert(Window { start: now, failures: 0 });
        if now >= window.start + WINDOW_SECS {
            *window = Window { start: now, failures: 0 };
        }
        window.failures = window.failures.saturating_add(1);
    }
}

impl Throttle {
    /// Drops windows that have ended; run periodically, off the request path.
    pub fn prune(&self, now: i64) {
        if let Ok(mut windows) = self.windows.lock() {
            windows.retain(|_, window| now < window.start + WINDOW_SECS);
        }
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

    #[test]
    fn ipv6_addresses_share_their_slash_64_and_mapped_ipv4_is_ipv4() {
        let throttle = Throttle::new(2);
        let first: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        throttle.record_failure(first, 0);
        throttle.record_failure(same_64, 0);
        assert!(throttle.retry_after(first, 1).is_some());
        assert!(throttle.retry_after(other_64, 1).is_none());
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        throttle.record_failure(mapped, 0);
        throttle.record_failure(IpAddr::from([10, 0, 0, 7]), 0);
        assert!(throttle.retry_after(IpAddr::from([10, 0, 0, 7]), 1).is_some());
        throttle.prune(61);
        assert!(throttle.retry_after(first, 61).is_none());
    }
}
