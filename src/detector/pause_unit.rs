//! The unit of measured pauses: the runtime writes them in milliseconds with a
//! `# unit: ms` line, but a file written by hand or by another tool may hold seconds,
//! and read as milliseconds those would pass for pauses a thousand times shorter than
//! they were, making any `acceptable_pause` look safe.

/// Whether pause samples, as written in a file that states no unit, look like seconds
/// rather than milliseconds: every value is a number below 1 and at least one is
/// written with a decimal point (`0.25`, `0.8`). A pause of at least 5 ms (the least
/// the runtime records) is below 1 only in seconds, and a file of whole numbers
/// (`0`, `12`) or with any value of 1 or more reads as milliseconds.
///
/// A reader should then refuse the file unless its unit is stated (`# unit: s` or
/// `# unit: ms`), as `rumor-sim tune` and `rumor-node doctor` do. Values that are not
/// finite non-negative numbers are not samples: the answer is then `false`, and the
/// reader refuses them on its own. No value at all is `false` too.
pub fn pauses_look_like_seconds<'a>(values: impl IntoIterator<Item = &'a str>) -> bool {
    let (mut any, mut fraction) = (false, false);
    for v in values {
        let v = v.trim();
        match v.parse::<f64>() {
            Ok(x) if (0.0..1.0).contains(&x) => {
                any = true;
                fraction |= v.contains('.');
            }
            _ => return false,
        }
    }
    any && fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_below_one_look_like_seconds() {
        assert!(pauses_look_like_seconds(["0.12", "0.5", "0"]));
        assert!(pauses_look_like_seconds([" 0.05 "]));
        // Milliseconds: a value of 1 or more, or only whole numbers.
        assert!(!pauses_look_like_seconds(["0.12", "1"]));
        assert!(!pauses_look_like_seconds(["0.5", "120.5"]));
        assert!(!pauses_look_like_seconds(["0", "0"]));
        assert!(!pauses_look_like_seconds([]));
        // Not samples: left to the reader.
        assert!(!pauses_look_like_seconds(["0.5", "soon"]));
        assert!(!pauses_look_like_seconds(["0.5", "-0.1"]));
        assert!(!pauses_look_like_seconds(["0.5", "NaN"]));
    }
}
