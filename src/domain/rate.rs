//! Rate limits as configured (`"30/min"`, `"off"`) and the client address they are keyed by.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use ipnet::IpNet;

/// At most `count` requests per `period`, as a burst or spread out (GCRA: one more request
/// is allowed every `period / count`, and up to `count` at once after a quiet `period`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    pub count: NonZeroU32,
    pub period: Duration,
}

impl RateSpec {
    /// `"N/sec"`, `"N/min"`, `"N/hour"` or `"N/day"`; `"off"` (or empty) for no limit.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (count, unit) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not like `30/min` or `off`"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("`{count}` is not a whole number"))?;
        let count = NonZeroU32::new(count).ok_or("the count must be at least 1")?;
        let period = match unit.trim() {
            "sec" | "s" => Duration::from_secs(1),
            "min" | "m" => Duration::from_secs(60),
            "hour" | "h" => Duration::from_secs(3600),
            "day" | "d" => Duration::from_secs(86_400),
            other => return Err(format!("`{other}` is not sec, min, hour or day")),
        };
        Ok(Some(Self { count, period }))
    }

    /// The time between two requests at the sustained rate.
    pub fn interval(&self) -> Duration {
        self.period / self.count.get()
    }
}

/// The client's address: the direct peer, unless the peer is a trusted proxy, in which case
/// the nearest address in `X-Forwarded-For` that is not itself a trusted proxy (read from the
/// right, since only the entries our proxies appended can be believed).
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut nearest = peer;
    for entry in header.rsplit(',') {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => nearest = ip,
            Ok(ip) => return ip,
            // Garbage where an address should be: trust nothing further left.
            Err(_) => return nearest,
        }
    }
    nearest
}

/// The network a client address belongs to for grouping: its /24 (IPv4) or /64 (IPv6).
pub fn network_of(ip: IpAddr) -> IpNet {
    let prefix = if ip.is_ipv4() { 24 } else { 64 };
    IpNet::new(ip, prefix)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(ip))
}

/// A network to block, as an organizer types it (`198.51.100.0/24`, or one address),
/// normalized to its range (`198.51.100.7/24` → `198.51.100.0/24`).
pub fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn specs_are_read_with_their_unit() {
        let s = RateSpec::parse("30/min").unwrap().unwrap();
        assert_eq!(s.count.get(), 30);
        assert_eq!(s.interval(), Duration::from_secs(2));
        assert_eq!(RateSpec::parse("off").unwrap(), None);
        assert_eq!(RateSpec::parse(" ").unwrap(), None);
        assert_eq!(
            RateSpec::parse("5/sec").unwrap().unwrap().period,
            Duration::from_secs(1)
        );
        for bad in ["30", "0/min", "x/min", "3/week", "-1/min"] {
            assert!(RateSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        // A client talking to us directly cannot choose its address.
        assert_eq!(
            client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        // Behind our proxy: the address it saw.
        assert_eq!(
            client_ip(ip("10.0.0.2"), Some("198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        // A client's own forged entry is left of the one our proxy appended.
        assert_eq!(
            client_ip(ip("10.0.0.2"), Some("1.2.3.4, 198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        // Two of our proxies in a row.
        assert_eq!(
            client_ip(ip("10.0.0.2"), Some("198.51.100.7, 10.0.0.3"), &trusted),
            ip("198.51.100.7")
        );
        // No header, or garbage: the nearest address we can vouch for.
        assert_eq!(client_ip(ip("10.0.0.2"), None, &trusted), ip("10.0.0.2"));
        assert_eq!(
            client_ip(ip("10.0.0.2"), Some("junk, 10.0.0.3"), &trusted),
            ip("10.0.0.3")
        );
    }

    #[test]
    fn blocked_networks_are_normalized() {
        assert_eq!(
            parse_network(" 198.51.100.7/24").unwrap().to_string(),
            "198.51.100.0/24"
        );
        assert_eq!(
            parse_network("203.0.113.5").unwrap().to_string(),
            "203.0.113.5/32"
        );
        assert!(parse_network("198.51.100.0/33").is_none());
        assert!(parse_network("somewhere").is_none());
    }

    #[test]
    fn networks_are_slash_24_and_slash_64() {
        assert_eq!(
            network_of(ip("198.51.100.77")),
            "198.51.100.0/24".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            network_of(ip("2001:db8:1:2:3:4:5:6")),
            "2001:db8:1:2::/64".parse::<IpNet>().unwrap()
        );
    }
}
