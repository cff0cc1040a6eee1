//! A pauses file as `rumor-node --pauses FILE` writes it (`# unit: ms`,
//! `# observed_seconds: ...`, `# nodes: ...`, then one pause a line), read for its
//! largest sample. `rumor-sim tune` has the full reader (sim/src/tune/pauses.rs); the
//! node does not depend on the simulator, so this is the small part the doctor needs,
//! reading the same format the same way.

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
pub fn worst(text: &str) -> Result<Option<Worst>, String> {
    let mut seconds_unit = false;
    let mut observed_seconds = None;
    let mut nodes = None;
    let mut raw: Vec<(usize, f64)> = Vec::new();
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
                        "ms" => seconds_unit = false,
                        "s" => seconds_unit = true,
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
        raw.push((n, x));
    }
    let scale = if seconds_unit { 1.0 } else { 1e-3 };
    let mut best: Option<Worst> = None;
    for &(line, x) in &raw {
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
}
