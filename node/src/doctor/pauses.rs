//! A pauses file as `rumor-node --pauses FILE` writes it (`# unit: ms`,
//! `# observed_seconds: ...`, `# nodes: ...`, then one pause a line), read for its
//! largest sample. `rumor-sim tune` has the full reader (sim/src/tune/pauses.rs); the
//! node does not depend on the simulator, so this is the small part the doctor needs,
//! reading the same format the same way: with the same refusal of values that look
//! like seconds in a file that states no unit
//! ([`rumor::detector::pauses_look_like_seconds`], which both call).

use std::time::Duration;

/// Anything longer is not a pause (a wrong unit, or a stopped node), as `tune` says.
const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// The largest pause of a file and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Worst {
    /// The largest sample.
    pub pause: Duration,
    /// Its 1-based line.
    pub line: usize,
    /// How many samples the file has.
    pub samples: usize,
    /// `# observed_seconds`, when stated.
    pub observed_seconds: Option<f64>,
    /// `# nodes`, when stated.
    pub nodes: Option<u32>,
}

/// Reads `text`: `#` lines are comments, `# key: value` headers (`unit` is `ms` or `s`,
/// default ms), every other non-empty line one pause. `None` when it lists no pause.
/// With no unit stated, values that look like seconds (all below 1, some with a
/// decimal point) are refused, as `tune` refuses them: read as milliseconds they would
/// pass for pauses a thousand times shorter.
pub fn worst(text: &str) -> Result<Option<Worst>, String> {
    // `None` until a `# unit:` line states it.
    let mut seconds_unit: Option<bool> = None;
    let mut observed_seconds = None;
    let mut nodes = None;
    let mut raw: Vec<(usize, f64, &str)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let (data, comment) = match line.split_once('#') {
            Some((d, c)) => (d.trim(), Some(c.trim())),
            None => (line.trim(), None),
        };
        if data.is_empty() {
            if let Some((k, v)) = comment.and_then(|c| c.split_once(':')) {
                let (k, v) = (k.trim(), v.trim());
                let bad = |what: &str| format!("line {n}: {k}: {v:?} is not {what}");
                match k {
                    "unit" => match v.to_ascii_lowercase().as_str() {
                        "ms" => seconds_unit = Some(false),
                        "s" => seconds_unit = Some(true),
                        _ => return Err(bad("ms or s")),
                    },
                    "observed_seconds" => {
                        let x: f64 = v.parse().map_err(|_| bad("a number of seconds"))?;
                        observed_seconds = Some(x).filter(|x| x.is_finite() && *x > 0.0);
                    }
                    "nodes" => nodes = Some(v.parse().map_err(|_| bad("a node count"))?),
                    _ => {}
                }
            }
            continue;
        }
        let x: f64 = data
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| format!("line {n}: {data:?} is not a pause (a number)"))?;
        raw.push((n, x, data));
    }
    if seconds_unit.is_none() && rumor::detector::pauses_look_like_seconds(raw.iter().map(|r| r.2))
    {
        let largest = raw.iter().map(|r| r.1).fold(0.0, f64::max);
        return Err(format!(
            "the values look like seconds (the largest is {largest}), and a pauses file is in \
             milliseconds unless it says otherwise: add `# unit: s` to the file (or \
             `# unit: ms` if they are milliseconds)"
        ));
    }
    let scale = if seconds_unit == Some(true) {
        1.0
    } else {
        1e-3
    };
    let mut best: Option<Worst> = None;
    for &(line, x, _) in &raw {
        let pause = Duration::try_from_secs_f64(x * scale)
            .ok()
            .filter(|d| *d <= MAX_PAUSE)
            .ok_or_else(|| {
                format!("line {line}: {x} is over an hour: not a pause (is the unit right?)")
            })?;
        if best.as_ref().is_none_or(|b| pause > b.pause) {
            best = Some(Worst {
                pause,
                line,
                samples: raw.len(),
                observed_seconds,
                nodes,
            });
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_runtime_writes() {
        let text = "# rumor pauses: timer lateness above 50 ms, oldest first (3 of 9 timers; max 4200.000 ms)\n\
                    # unit: ms\n# observed_seconds: 3600.000\n# nodes: 1\n# pauses_in_window: 3\n\
                    120.500\n4200.000\n80.000\n";
        let w = worst(text).unwrap().unwrap();
        assert_eq!(w.pause, Duration::from_millis(4200));
        assert_eq!((w.line, w.samples, w.nodes), (7, 3, Some(1)));
        assert_eq!(w.observed_seconds, Some(3600.0));
    }

    #[test]
    fn seconds_empty_and_bad_input() {
        let w = worst("# unit: s\n1.5\n0.2\n").unwrap().unwrap();
        assert_eq!(w.pause, Duration::from_millis(1500));
        assert_eq!(worst("# unit: ms\n").unwrap(), None);
        assert!(worst("12\nsoon\n").unwrap_err().contains("line 2"));
        assert!(worst("# unit: h\n").unwrap_err().contains("unit"));
        assert!(
            worst("# unit: s\n99999\n")
                .unwrap_err()
                .contains("over an hour")
        );
        assert!(worst("-3\n").is_err());
        assert!(worst("1e400\n").is_err());
    }

    #[test]
    fn values_that_look_like_seconds_need_the_unit_stated() {
        // As tune refuses it: read as milliseconds, a 4.2 s pause would pass for 4 ms
        // and convict-below-pause would pass whatever the config.
        let e = worst("0.12\n4.2e-1\n0.05\n").unwrap_err();
        assert!(
            e.contains("look like seconds") && e.contains("# unit: s"),
            "{e}"
        );
        let w = worst("# unit: s\n0.12\n0.42\n").unwrap().unwrap();
        assert_eq!(w.pause, Duration::from_millis(420));
        // Stated as ms, or whole numbers, or any value of 1 or more: milliseconds.
        let w = worst("# unit: ms\n0.12\n0.42\n").unwrap().unwrap();
        assert_eq!(w.pause, Duration::from_micros(420));
        assert!(worst("0\n0\n").unwrap().is_some());
        assert!(worst("0.5\n120.5\n").unwrap().is_some());
    }
}
