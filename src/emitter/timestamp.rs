//! A msgpack timestamp (extension -1, as notepack writes a JavaScript `Date`) in the form
//! `Date.prototype.toJSON` gives it, which is what the Node reference's sockets receive:
//! `2024-05-06T07:08:09.123Z` (milliseconds, UTC).

/// The ISO 8601 form of the timestamp in `data` (4, 8 or 12 bytes); `None` for another length
/// or a year outside 0..=9999 (where JavaScript writes six-digit years).
pub fn iso8601(data: &[u8]) -> Option<String> {
    let (secs, nanos): (i64, u32) = match data.len() {
        4 => (i64::from(u32::from_be_bytes(data.try_into().ok()?)), 0),
        8 => {
            let both = u64::from_be_bytes(data.try_into().ok()?);
            ((both & 0x3_ffff_ffff) as i64, (both >> 34) as u32)
        }
        12 => (
            i64::from_be_bytes(data[4..].try_into().ok()?),
            u32::from_be_bytes(data[..4].try_into().ok()?),
        ),
        _ => return None,
    };
    if nanos >= 1_000_000_000 {
        return None;
    }
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        nanos / 1_000_000
    ))
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::iso8601;

    #[test]
    fn a_32_bit_timestamp_is_written_as_javascript_writes_a_date() {
        // 2021-01-01T00:00:00Z
        assert_eq!(
            iso8601(&1_609_459_200u32.to_be_bytes()).as_deref(),
            Some("2021-01-01T00:00:00.000Z")
        );
    }

    #[test]
    fn a_64_bit_timestamp_keeps_its_milliseconds() {
        // 2024-02-29T12:34:56.789Z: leap day, 789 ms.
        let secs: u64 = 1_709_210_096;
        let nanos: u64 = 789_000_000;
        let data = ((nanos << 34) | secs).to_be_bytes();
        assert_eq!(iso8601(&data).as_deref(), Some("2024-02-29T12:34:56.789Z"));
    }

    #[test]
    fn a_96_bit_timestamp_before_1970_is_read() {
        let mut data = 0u32.to_be_bytes().to_vec();
        data.extend((-86_400i64).to_be_bytes());
        assert_eq!(iso8601(&data).as_deref(), Some("1969-12-31T00:00:00.000Z"));
    }

    #[test]
    fn other_lengths_and_bad_nanoseconds_are_refused() {
        assert_eq!(iso8601(&[1, 2, 3]), None);
        let mut data = 1_000_000_000u32.to_be_bytes().to_vec();
        data.extend(0i64.to_be_bytes());
        assert_eq!(iso8601(&data), None);
    }
}
