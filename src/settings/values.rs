//! Parsers of the values of settings that no built-in range expresses: each refuses an
//! out-of-range value with a message clap prints next to the setting's name.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{HistoryOnConnect, MetricsAddr};
use crate::client_addr::TrustedProxies;

/// A whole number of at least `MIN` (for counts and sizes where 0 makes no sense).
pub(super) fn at_least<const MIN: usize>(raw: &str) -> Result<usize, String> {
    let value: usize = raw.parse().map_err(|err| format!("{err}"))?;
    if value < MIN {
        return Err(format!("{value} is below the minimum, {MIN}"));
    }
    Ok(value)
}

/// Messages per second: 0 (no limit) or more, finite.
pub(super) fn rate(raw: &str) -> Result<f64, String> {
    let value: f64 = raw.parse().map_err(|err| format!("{err}"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{raw} is not a rate: 0 (no limit) or more"));
    }
    Ok(value)
}

/// A burst: at least one event, finite.
pub(super) fn burst(raw: &str) -> Result<f64, String> {
    let value: f64 = raw.parse().map_err(|err| format!("{err}"))?;
    if !value.is_finite() || value < 1.0 {
        return Err(format!("{raw} is not a burst: 1 or more"));
    }
    Ok(value)
}

/// Trusted proxies, comma-separated, each one address (a /32 or /128) or a CIDR block. Blank
/// entries are skipped, so that an empty `TRUSTED_PROXIES=` (a template left empty) means none.
pub(super) fn proxies(raw: &str) -> Result<TrustedProxies, String> {
    let nets = raw
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("{entry:?} is neither an IP address nor a CIDR block (10.0.0.0/8)")
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TrustedProxies::new(&nets))
}

/// `host:port`, or `off`.
pub(super) fn metrics_addr(raw: &str) -> Result<MetricsAddr, String> {
    match raw.trim() {
        "off" => Ok(MetricsAddr(None)),
        addr => addr
            .parse()
            .map(|addr| MetricsAddr(Some(addr)))
            .map_err(|_| format!("{raw:?} is neither host:port (127.0.0.1:9091) nor `off`")),
    }
}

/// `all`, or a number of messages per conversation (0 or more).
pub(super) fn history_on_connect(raw: &str) -> Result<HistoryOnConnect, String> {
    match raw.trim() {
        "all" => Ok(HistoryOnConnect(None)),
        n => n
            .parse()
            .map(|n| HistoryOnConnect(Some(n)))
            .map_err(|_| format!("{raw:?} is neither `all` nor a number of messages (0 or more)")),
    }
}

/// A sentinel's address, `host:port` (REDIS_SENTINELS): the port a number from 1 to 65535.
pub(super) fn sentinel_address(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let (host, port) = raw
        .rsplit_once(':')
        .ok_or_else(|| format!("{raw:?} is not host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{raw:?}: the port is not a number from 1 to 65535"))?;
    if host.is_empty() || port == 0 || host.contains('/') || host.contains('@') {
        return Err(format!(
            "{raw:?} is not host:port (passwords have settings of their own)"
        ));
    }
    Ok(raw.to_owned())
}

/// A name that is not empty (REDIS_SENTINEL_MASTER).
pub(super) fn not_empty(raw: &str) -> Result<String, String> {
    match raw.trim() {
        "" => Err("must not be empty".to_owned()),
        name => Ok(name.to_owned()),
    }
}
