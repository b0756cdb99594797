//! Durations written the way people write them: `"500ms"`, `"2s"`, `"1m30s"`, `"24h"`, `"7d"`.
//!
//! A dozen lines instead of the `humantime` crate: we accept a deliberately small grammar
//! (integers with the units ms, s, m, h, d, concatenated), need the inverse for printing the
//! effective config, and want our own error message naming what was expected.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected a duration such as \"500ms\", \"2s\", \"1m30s\", \"24h\" or \"7d\" (units ms, s, m, h, d), got {0:?}"
)]
pub struct DurationError(pub String);

/// Parses a humane duration; at least one `<integer><unit>` part, optional spaces between parts.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError(text.to_owned());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let millis_per_unit: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = rest[unit_len..].trim_start();
        let part = value.checked_mul(millis_per_unit).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// Prints a duration in the same grammar, largest units first (`90s` → `"1m30s"`); sub-
/// millisecond parts are dropped, zero prints as `"0s"`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_humane_durations() {
        let ok = [
            ("500ms", 500),
            ("2s", 2_000),
            ("1m30s", 90_000),
            ("1m 30s", 90_000),
            ("5min", 300_000),
            ("24h", 86_400_000),
            ("7d", 604_800_000),
            (" 0s ", 0),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in [
            "",
            "2",
            "s",
            "2 s",
            "-1s",
            "1.5s",
            "2sec",
            "2S",
            "1h-",
            "99999999999999999999s",
            "18446744073709551615d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn prints_largest_units_first() {
        assert_eq!(format_duration(Duration::from_millis(90_500)), "1m30s500ms");
        assert_eq!(format_duration(Duration::from_secs(86_400 + 3_600)), "1d1h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    proptest! {
        #[test]
        fn round_trips(ms in 0u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn never_panics(s in "\\PC{0,16}") {
            let _ = parse_duration(&s);
        }
    }
}
