//! Configuration durations: plain seconds ("900") or Go-style ("15m", "1h30m", "24h", "500ms").

use std::time::Duration;

/// The longest duration Go's `time.ParseDuration` accepts: `i64::MAX` nanoseconds (about 292
/// years). Anything longer is refused as out of range, as Go refuses it, so every sum below is
/// checked and no later `now + duration` can overflow a Unix timestamp.
pub const MAX_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

/// Parses a Go `time.ParseDuration` string or a plain number of seconds.
/// Negative values are refused: every duration we configure is a length of time.
///
/// Errors (a message naming the input): empty, malformed, an unknown unit, or longer than
/// [`MAX_DURATION`]. Never panics, whatever the input.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let out_of_range = || format!("duration {input:?} is out of range (at most 292 years)");
    if let Ok(seconds) = s.parse::<u64>() {
        return Some(Duration::from_secs(seconds))
            .filter(|d| *d <= MAX_DURATION)
            .ok_or_else(out_of_range);
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {input:?}"))?;
        if number_len == 0 {
            return Err(format!("invalid duration {input:?}"));
        }
        let (number, tail) = rest.split_at(number_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid number in duration {input:?}"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let unit_seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("unknown unit {unit:?} in duration {input:?}")),
        };
        let part = Duration::try_from_secs_f64(value * unit_seconds).map_err(|_| out_of_range())?;
        total = total
            .checked_add(part)
            .filter(|d| *d <= MAX_DURATION)
            .ok_or_else(out_of_range)?;
        rest = next;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_durations_and_plain_seconds() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("900s"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("900"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["", "m", "15x", "-5m", "1h-3m", "h1"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn durations_longer_than_go_allows_are_refused_not_panicked_on() {
        for huge in [
            "18000000000000000000s18000000000000000000s",
            "18446744073709551615",
            "9223372037s",
            "2562048h",
            "1e400s",
            "99999999999999999999999999999999999999999999999999h",
        ] {
            assert!(parse_duration(huge).is_err(), "{huge:?} should be refused");
        }
        assert_eq!(
            parse_duration("9223372036s"),
            Ok(Duration::from_secs(9_223_372_036))
        );
    }

    proptest::proptest! {
        /// Any string at all: an answer, never a panic, and never more than Go's maximum.
        #[test]
        fn any_input_parses_or_errs_within_range(input in ".{0,40}") {
            if let Ok(d) = parse_duration(&input) {
                proptest::prop_assert!(d <= MAX_DURATION);
            }
        }

        #[test]
        fn summed_parts_never_overflow(a in proptest::num::u64::ANY, b in proptest::num::u64::ANY) {
            if let Ok(d) = parse_duration(&format!("{a}s{b}s")) {
                proptest::prop_assert!(d <= MAX_DURATION);
            }
        }

        #[test]
        fn whole_seconds_round_trip(n in 0u64..10_000_000) {
            proptest::prop_assert_eq!(parse_duration(&format!("{n}s")), Ok(Duration::from_secs(n)));
            proptest::prop_assert_eq!(parse_duration(&n.to_string()), Ok(Duration::from_secs(n)));
        }
    }
}
