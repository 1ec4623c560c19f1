//! IP filters on credentials and the client address behind trusted proxies.
//!
//! A filter is a list of addresses and CIDR ranges, IPv4 and IPv6; an empty list allows
//! every address. Addresses are compared in canonical form: an IPv4-mapped IPv6 address
//! (`::ffff:127.0.0.1`, what a dual-stack socket reports for an IPv4 peer) is the IPv4
//! address it maps, on both sides of the comparison.

use ipnet::{IpNet, Ipv4Net};
use std::net::IpAddr;

/// Entries a filter may hold.
pub const MAX_ENTRIES: usize = 100;

/// Why a filter entry was refused; `entry` is the text as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    pub entry: String,
    pub message: String,
}

fn refuse(entry: &str, message: impl Into<String>) -> FilterError {
    FilterError { entry: entry.to_string(), message: message.into() }
}

/// An IPv6 range inside `::ffff:0:0/96` is the IPv4 range it maps.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if v6.prefix_len() >= 96 {
            if let Some(v4) = v6.network().to_ipv4_mapped() {
                if let Ok(mapped) = Ipv4Net::new(v4, v6.prefix_len() - 96) {
                    return IpNet::V4(mapped);
                }
            }
        }
    }
    net
}

/// Parses one entry: an address (a single host) or a range in CIDR notation whose host
/// bits are zero. `10.0.0.1/8` is refused with the range it probably meant, rather than
/// silently widened or narrowed.
pub fn parse_entry(entry: &str) -> Result<IpNet, FilterError> {
    if entry.is_empty() || entry.trim() != entry {
        return Err(refuse(entry, "must be an IP address or a CIDR range, without spaces"));
    }
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Ok(IpNet::from(address.to_canonical()));
    }
    let Ok(net) = entry.parse::<IpNet>() else {
        return Err(refuse(
            entry,
            "is not an IP address or a CIDR range (examples: 192.0.2.7, 10.0.0.0/8, 2001:db8::/32)",
        ));
    };
    if net.addr() != net.network() {
        return Err(refuse(
            entry,
            format!("has bits set after the /{} prefix; the range is {}", net.prefix_len(), net.trunc()),
        ));
    }
    Ok(canonical_net(net))
}

/// Parses a whole filter; the first bad entry is named in the error.
pub fn parse_filter(entries: &[String]) -> Result<Vec<IpNet>, FilterError> {
    if entries.len() > MAX_ENTRIES {
        return Err(refuse("", format!("holds {} entries; at most {MAX_ENTRIES} are allowed", entries.len())));
    }
    entries.iter().map(|entry| parse_entry(entry)).collect()
}

/// The text a parsed entry is stored and shown as: a bare address for a single host.
pub fn entry_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() { net.addr().to_string() } else { net.to_string() }
}

/// Whether `filter` lets `address` in. An empty filter allows every address. The
/// unspecified addresses (`0.0.0.0`, `::`) stand for a client whose address is not known
/// and are never let in by a filter, not even `0.0.0.0/0` or `::/0`.
pub fn allows(filter: &[IpNet], address: IpAddr) -> bool {
    let address = address.to_canonical();
    filter.is_empty() || (!address.is_unspecified() && filter.iter().any(|net| net.contains(&address)))
}

/// The address a client is attributed when a trusted proxy forwarded something that is
/// not an address: unknown, which no filter lets in (see [`allows`]).
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

/// One `X-Forwarded-For` hop: an address, optionally with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:443`) or an IPv6 zone (`fe80::1%eth0`), as proxies write them.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?.trim_matches(|c| c == ' ' || c == '\t');
    let host = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(|port| port.parse::<u16>().is_ok())) {
            return None;
        }
        host
    } else if text.matches(':').count() == 1 {
        let (host, port) = text.split_once(':')?;
        port.parse::<u16>().ok()?;
        host
    } else {
        text
    };
    let host = host.split_once('%').map_or(host, |(address, _zone)| address);
    host.parse::<IpAddr>().ok().map(|address| address.to_canonical())
}

/// The client's address for a request that came from `peer` carrying the raw
/// `X-Forwarded-For` values `forwarded_for` (each a comma-separated list, in header
/// order). When the peer is not a trusted proxy, the header is ignored: anyone can send
/// it. When it is, the list is read from the right, skipping trusted proxies; the first
/// untrusted address is the client. A hop that is not an address makes the client
/// [`UNKNOWN_CLIENT`]: what is left of it was written by someone untrusted. A list of
/// trusted proxies only yields its left-most entry, and no list at all the peer.
pub fn client_address(peer: IpAddr, forwarded_for: &[&[u8]], trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let hops: Vec<&[u8]> = forwarded_for.iter().flat_map(|value| value.split(|byte| *byte == b',')).collect();
    for hop in hops.iter().rev() {
        let Some(address) = parse_hop(hop) else { return UNKNOWN_CLIENT };
        client = address;
        if !is_trusted(&client) {
            return client;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn filter(entries: &[&str]) -> Vec<IpNet> {
        parse_filter(&entries.iter().map(|entry| entry.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn entries_parse_to_canonical_ranges() {
        assert_eq!(entry_text(&parse_entry("127.0.0.1").unwrap()), "127.0.0.1");
        assert_eq!(entry_text(&parse_entry("10.0.0.0/8").unwrap()), "10.0.0.0/8");
        assert_eq!(entry_text(&parse_entry("2001:db8::/32").unwrap()), "2001:db8::/32");
        assert_eq!(entry_text(&parse_entry("::ffff:127.0.0.1").unwrap()), "127.0.0.1");
        assert_eq!(entry_text(&parse_entry("::ffff:10.0.0.0/104").unwrap()), "10.0.0.0/8");
        assert_eq!(entry_text(&parse_entry("192.0.2.7/32").unwrap()), "192.0.2.7");
    }

    #[test]
    fn bad_entries_are_named_with_what_to_fix() {
        for bad in ["", " 10.0.0.1", "10.0.0.0/33", "10.0.0", "localhost", "10.0.0.0/8,", "::1/129"] {
            let error = parse_entry(bad).unwrap_err();
            assert_eq!(error.entry, bad);
        }
        let error = parse_entry("10.0.0.1/8").unwrap_err();
        assert!(error.message.contains("10.0.0.0/8"), "{}", error.message);
        let too_many: Vec<String> = (0..=MAX_ENTRIES).map(|n| format!("10.0.{}.{}", n / 256, n % 256)).collect();
        assert!(parse_filter(&too_many).is_err());
    }

    #[test]
    fn filters_match_v4_v6_and_mapped_addresses() {
        let loopback = filter(&["127.0.0.0/8"]);
        assert!(allows(&loopback, ip("127.0.0.1")));
        assert!(allows(&loopback, ip("::ffff:127.0.0.1")));
        assert!(!allows(&loopback, ip("128.0.0.1")));
        assert!(!allows(&loopback, ip("::1")));
        let v6 = filter(&["2001:db8::/32", "192.0.2.7"]);
        assert!(allows(&v6, ip("2001:db8:1::5")));
        assert!(!allows(&v6, ip("2001:db9::1")));
        assert!(allows(&v6, ip("192.0.2.7")));
        assert!(!allows(&v6, ip("192.0.2.8")));
        assert!(allows(&[], ip("203.0.113.9")));
        // An unknown client is let in by no filter, not even "anywhere".
        for anywhere in [filter(&["0.0.0.0/0"]), filter(&["::/0"])] {
            assert!(!allows(&anywhere, UNKNOWN_CLIENT));
            assert!(!allows(&anywhere, ip("0.0.0.0")));
        }
        assert!(allows(&[], UNKNOWN_CLIENT));
        // A mapped entry matches the plain IPv4 peer too.
        assert!(allows(&filter(&["::ffff:192.0.2.0/120"]), ip("192.0.2.200")));
    }

    fn from(peer: &str, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
        let values: Vec<&[u8]> = forwarded_for.iter().map(|value| value.as_bytes()).collect();
        client_address(ip(peer), &values, trusted)
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let trusted = filter(&["10.0.0.0/8"]);
        // From an untrusted peer, the header is whatever the client wanted it to be.
        assert_eq!(from("198.51.100.4", &["127.0.0.1"], &trusted), ip("198.51.100.4"));
        // From a trusted proxy, the right-most untrusted entry.
        assert_eq!(from("10.0.0.2", &["127.0.0.1, 203.0.113.5"], &trusted), ip("203.0.113.5"));
        assert_eq!(from("10.0.0.2", &["203.0.113.5, 10.0.0.9"], &trusted), ip("203.0.113.5"));
        // Header values in order, lists within them.
        assert_eq!(from("10.0.0.2", &["192.0.2.1", "10.0.0.7"], &trusted), ip("192.0.2.1"));
        // No header: the proxy itself.
        assert_eq!(from("10.0.0.2", &[], &trusted), ip("10.0.0.2"));
        // Only trusted hops: the left-most.
        assert_eq!(from("10.0.0.2", &["10.0.0.5, 10.0.0.3"], &trusted), ip("10.0.0.5"));
        // Mapped addresses are normalised before matching.
        assert_eq!(from("::ffff:10.0.0.2", &["::ffff:203.0.113.5"], &trusted), ip("203.0.113.5"));
        // No trusted proxies configured: always the peer.
        assert_eq!(from("10.0.0.2", &["203.0.113.5"], &[]), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_hops_with_ports_and_zones_parse_and_garbage_makes_the_client_unknown() {
        let trusted = filter(&["10.0.0.0/8"]);
        assert_eq!(from("10.0.0.2", &["203.0.113.9:4711"], &trusted), ip("203.0.113.9"));
        assert_eq!(from("10.0.0.2", &["[2001:db8::1]:443"], &trusted), ip("2001:db8::1"));
        assert_eq!(from("10.0.0.2", &["[2001:db8::1]"], &trusted), ip("2001:db8::1"));
        assert_eq!(from("10.0.0.2", &["fe80::1%eth0"], &trusted), ip("fe80::1"));
        assert_eq!(from("10.0.0.2", &["2001:db8::1"], &trusted), ip("2001:db8::1"));
        // Whatever an untrusted client wrote that is not an address ends in "unknown",
        // never in the proxy's own address.
        for garbage in ["junk", "203.0.113.9:99999", "[2001:db8::1]x", "", "unknown"] {
            assert_eq!(from("10.0.0.2", &[&format!("192.0.2.1, {garbage}")], &trusted), UNKNOWN_CLIENT, "{garbage:?}");
        }
        let invalid_utf8: &[u8] = b"\xff, 203.0.113.9";
        assert_eq!(client_address(ip("10.0.0.2"), &[invalid_utf8], &trusted), ip("203.0.113.9"));
        let invalid_last: &[u8] = b"203.0.113.9, \xff";
        assert_eq!(client_address(ip("10.0.0.2"), &[invalid_last], &trusted), UNKNOWN_CLIENT);
    }
}
