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
    /// Admitted attempts not finished yet ([`Throttle::admit`]): each may still fail.
    in_flight: u32,
}

impl Window {
    fn ended(&self, now: i64) -> bool {
        now >= self.start + WINDOW_SECS
    }

    /// Whether the window can go: ended, with no admitted attempt still running.
    fn forgettable(&self, now: i64) -> bool {
        self.ended(now) && self.in_flight == 0
    }
}

/// An attempt [`Throttle::admit`] let through, counted until it is dropped; a failure is
/// recorded with [`Throttle::record_failure`] before that.
pub struct Admission<'a> {
    throttle: &'a Throttle,
    bucket: IpAddr,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Ok(mut windows) = self.throttle.windows.lock() {
            if let Some(window) = windows.get_mut(&self.bucket) {
                window.in_flight = window.in_flight.saturating_sub(1);
            }
        }
    }
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

    /// Lets a slow attempt (a password, checked with argon2 off the request's task) through
    /// only while the failures so far plus the attempts still running stay under the
    /// limit, so that many attempts sent at once cannot all pass the check before any of
    /// them has failed. `Err` is the seconds to wait: until the window ends when the
    /// failures used it up, else a second, about as long as the running attempts take.
    pub fn admit(&self, ip: IpAddr, now: i64) -> Result<Admission<'_>, u64> {
        let Ok(mut windows) = self.windows.lock() else { return Err(1) };
        let window = Self::current(&mut windows, bucket(ip), now);
        if window.failures >= self.limit {
            return Err((window.start + WINDOW_SECS - now).max(1) as u64);
        }
        if window.failures.saturating_add(window.in_flight) >= self.limit {
            return Err(1);
        }
        window.in_flight += 1;
        Ok(Admission { throttle: self, bucket: bucket(ip) })
    }

    pub fn record_failure(&self, ip: IpAddr, now: i64) {
        let Ok(mut windows) = self.windows.lock() else { return };
        let window = Self::current(&mut windows, bucket(ip), now);
        window.failures = window.failures.saturating_add(1);
    }

    /// The bucket's window at `now`: a new one when it had none or its last has ended (the
    /// attempts still running stay counted).
    fn current(windows: &mut HashMap<IpAddr, Window>, bucket: IpAddr, now: i64) -> &mut Window {
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, window| !window.forgettable(now));
        }
        let window = windows.entry(bucket).or_insert(Window { start: now, failures: 0, in_flight: 0 });
        if window.ended(now) {
            *window = Window { start: now, failures: 0, in_flight: window.in_flight };
        }
        window
    }
}

impl Throttle {
    /// Drops windows that have ended; run periodically, off the request path.
    pub fn prune(&self, now: i64) {
        if let Ok(mut windows) = self.windows.lock() {
            windows.retain(|_, window| !window.forgettable(now));
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
    fn attempts_running_at_once_count_against_the_limit_until_they_end() {
        let throttle = Throttle::new(3);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let running: Vec<_> = (0..3).map(|_| throttle.admit(ip, 100).expect("under the limit")).collect();
        assert_eq!(throttle.admit(ip, 100).err(), Some(1), "three running fill the limit");
        assert!(throttle.admit([10, 0, 0, 2].into(), 100).is_ok(), "other addresses are not affected");
        // Two fail, one succeeds: the failures stay, the running count goes.
        throttle.record_failure(ip, 101);
        throttle.record_failure(ip, 101);
        drop(running);
        let again = throttle.admit(ip, 101).expect("two failures and nothing running");
        throttle.record_failure(ip, 102);
        drop(again);
        assert_eq!(throttle.admit(ip, 102).err(), Some(58), "used up: until the window ends");
        assert_eq!(throttle.retry_after(ip, 102), Some(58));
        // An attempt running across the window's end is still counted, and pruning keeps it.
        let across = throttle.admit(ip, 160).expect("a new window");
        throttle.prune(200);
        let held: Vec<_> = (0..2).map(|_| throttle.admit(ip, 200).expect("under the limit")).collect();
        assert_eq!(throttle.admit(ip, 200).err(), Some(1));
        drop((across, held));
        assert!(throttle.admit(ip, 200).is_ok());
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
