//! Durations as the config, the CLI and the reports write them: `250ms`, `1.5s`, `2m`,
//! `1h`. [`parse_duration`] reads what [`fmt_dur`] writes (and a bare number of seconds);
//! `Config::set` and every config error message go through them, so a value an error
//! prints can be pasted back.

use std::time::Duration;

/// Parses `250ms`, `1.5s`, `2m`, `1h`, `750us`, `10ns`, a bare number of seconds, or
/// any of humantime's forms (`1m 30s`, `2min`, `1h30m`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    parse_simple(s).or_else(|| {
        humantime::parse_duration(s)
            .ok()
            .filter(|d| d.as_secs_f64() < 1e12)
    })
}

/// One number and one unit, fractions allowed (`1.5s`), which humantime refuses.
fn parse_simple(s: &str) -> Option<Duration> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let x: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    let secs = x * scale;
    (0.0..1e12)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn fmt_dur(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        "0s".to_string()
    } else if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_forms_humantime_and_bare_seconds() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("1.5s"), Some(ms(1_500)));
        assert_eq!(parse_duration(" 250ms "), Some(ms(250)));
        assert_eq!(parse_duration("3"), Some(ms(3_000)));
        assert_eq!(parse_duration("1m 30s"), Some(ms(90_000)));
        assert_eq!(parse_duration("2min"), Some(ms(120_000)));
        assert_eq!(parse_duration("1h30m"), Some(ms(5_400_000)));
        for bad in ["", "soon", "-1s", "1.5.s", "1e400s", "99999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn what_fmt_writes_parses_back() {
        for ns in [
            0u64,
            1,
            999,
            1_000,
            1_500_000,
            2_000_000_000,
            86_400_000_000_000,
        ] {
            let d = Duration::from_nanos(ns);
            assert_eq!(parse_duration(&fmt_dur(d)), Some(d), "{ns}");
        }
    }
}
