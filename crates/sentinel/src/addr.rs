//! Instance addresses. An address keeps the host as the user (or a peer) wrote it and the IP
//! it resolved to: Sentinel connects to the IP, and announces either one depending on
//! `announce-hostnames`, so a setup behind DNS names keeps working when IPs change.

use std::net::IpAddr;

/// Turns a hostname into an IP. The driver resolves through the system; tests map names.
pub trait Resolver {
    fn resolve(&self, host: &str) -> Option<String>;
}

/// Accepts IP literals only: what `resolve-hostnames no` means.
pub struct NoResolver;

impl Resolver for NoResolver {
    fn resolve(&self, _host: &str) -> Option<String> {
        None
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    pub host: String,
    pub ip: String,
    pub port: u16,
}

/// Why an address was refused, in Redis's words (sentinelCheckCreateInstanceErrors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrError {
    Unresolvable,
    BadPort,
}

impl AddrError {
    pub fn message(self) -> &'static str {
        match self {
            AddrError::Unresolvable => "Can't resolve instance hostname.",
            AddrError::BadPort => "Invalid port number",
        }
    }
}

pub fn is_ip(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
}

impl Addr {
    /// An address for `host:port`. With `resolve` false only IP literals are accepted; with
    /// `accept_unresolved` a name that does not resolve yet is kept (its IP is retried at
    /// each reconnection), which is what Sentinel does for instances it learns about.
    pub fn new(
        host: &str,
        port: i64,
        resolve: bool,
        accept_unresolved: bool,
        resolver: &dyn Resolver,
    ) -> Result<Addr, AddrError> {
        if !(0..=65535).contains(&port) {
            return Err(AddrError::BadPort);
        }
        let port = port as u16;
        if is_ip(host) {
            return Ok(Addr { host: host.to_string(), ip: host.to_string(), port });
        }
        if !resolve {
            return Err(AddrError::Unresolvable);
        }
        match resolver.resolve(host) {
            Some(ip) => Ok(Addr { host: host.to_string(), ip, port }),
            None if accept_unresolved => Ok(Addr { host: host.to_string(), ip: host.to_string(), port }),
            None => Err(AddrError::Unresolvable),
        }
    }

    /// The address as this sentinel tells others about it.
    pub fn announced(&self, hostnames: bool) -> &str {
        if hostnames {
            &self.host
        } else {
            &self.ip
        }
    }

    /// `ip:port`, with brackets around IPv6 addresses (the name Redis gives replicas).
    pub fn name(&self, hostnames: bool) -> String {
        format_host_port(self.announced(hostnames), self.port)
    }

    /// True when both name the same endpoint (by IP, or by hostname when they have one).
    pub fn same(&self, other: &Addr) -> bool {
        self.port == other.port && (self.ip == other.ip || self.host.eq_ignore_ascii_case(&other.host))
    }

    /// True when `host` (as another instance reports it, a name or an IP) is this address.
    pub fn matches_host(&self, host: &str, resolver: &dyn Resolver) -> bool {
        if self.host.eq_ignore_ascii_case(host) || self.ip == host {
            return true;
        }
        !is_ip(host) && resolver.resolve(host).is_some_and(|ip| ip == self.ip)
    }
}

pub fn format_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Map;
    impl Resolver for Map {
        fn resolve(&self, host: &str) -> Option<String> {
            (host == "db.local").then(|| "10.0.0.5".to_string())
        }
    }

    #[test]
    fn hostnames_need_resolution_enabled() {
        assert_eq!(Addr::new("db.local", 6379, false, false, &Map), Err(AddrError::Unresolvable));
        let a = Addr::new("db.local", 6379, true, false, &Map).unwrap();
        assert_eq!(a.ip, "10.0.0.5");
        assert_eq!(a.name(false), "10.0.0.5:6379");
        assert_eq!(a.name(true), "db.local:6379");
        assert!(a.matches_host("10.0.0.5", &Map));
        assert!(a.matches_host("DB.local", &Map));
        assert_eq!(Addr::new("1.2.3.4", 70000, false, false, &Map), Err(AddrError::BadPort));
        assert_eq!(Addr::new("::1", 5, false, false, &Map).unwrap().name(false), "[::1]:5");
    }
}
