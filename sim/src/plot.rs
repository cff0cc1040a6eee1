//! `sweep --plot FILE.svg`: detection latency against false convictions, one labelled
//! point per grid setting.
//!
//! Only plotters' SVG backend is used. It writes text as SVG `<text>` elements and
//! estimates label widths itself, so no font files or system fonts are needed.

use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use crate::sweep::PointSummary;

/// One point of the plot.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotPoint {
    /// Label drawn next to the point (the grid setting).
    pub label: String,
    /// x: detection latency p99 in seconds; `None` when no crash was detected (such a
    /// setting cannot be placed and is listed in the caption instead).
    pub detection_p99_s: Option<f64>,
    /// y: false convictions, summed over the seeds.
    pub false_convictions: u64,
}

/// The plot points of a sweep, in grid order.
pub fn points_of(sweep: &[PointSummary]) -> Vec<PlotPoint> {
    sweep
        .iter()
        .map(|p| PlotPoint {
            label: p.label(),
            detection_p99_s: p.detection_ms.p99.map(|ms| ms / 1e3),
            false_convictions: p.false_convictions,
        })
        .collect()
}

/// Draws `points` into the SVG file `path` under `title`. Returns how many points were
/// placed (those without a detection latency are left out and counted in the caption).
pub fn plot(path: &Path, title: &str, points: &[PlotPoint]) -> Result<usize, String> {
    let placed: Vec<(f64, f64, &str)> = points
        .iter()
        .filter_map(|p| {
            p.detection_p99_s
                .map(|x| (x, p.false_convictions as f64, p.label.as_str()))
        })
        .collect();
    let skipped = points.len() - placed.len();
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());

    let (mut x0, mut x1) = placed
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    let pad = ((x1 - x0) * 0.15).max(0.5);
    let (x0, x1) = ((x0 - pad).max(0.0), x1 + pad * 2.0);
    let ymax = placed.iter().map(|p| p.1).fold(0.0, f64::max);
    // Nothing convicted anywhere: say so, on an axis from 0, rather than drawing a
    // flat line that reads like a measurement of something.
    let none = !placed.is_empty() && ymax == 0.0;
    let (y0, y1) = if none {
        (0.0, 1.0)
    } else {
        (-0.5, (ymax * 1.2).max(ymax + 1.0))
    };

    let (width, height) = (960u32, 640u32);
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut caption = title.to_string();
    if skipped > 0 {
        caption.push_str(&format!(
            " ({skipped} setting(s) without detected crashes not shown)"
        ));
    }
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    // False convictions are counts: label whole numbers only.
    let y_fmt = |v: &f64| {
        if v.fract().abs() < 1e-9 && *v >= 0.0 {
            format!("{v:.0}")
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc("detection latency p99 (s)")
        .y_desc("false convictions (sum over seeds)")
        .y_labels(if none {
            2
        } else {
            ((y1 + 0.5).ceil() as usize + 1).clamp(3, 12)
        })
        .y_label_formatter(&y_fmt)
        .draw()
        .map_err(|e| err(&e))?;
    // Stack labels of nearby points on separate lines so they do not overprint:
    // greedily by x, each label takes the first line whose previous label has ended.
    let px_per_x = f64::from(width - 110) / (x1 - x0);
    let mut order: Vec<usize> = (0..placed.len()).collect();
    order.sort_by(|&a, &b| placed[a].0.total_cmp(&placed[b].0));
    let mut line_end = [f64::NEG_INFINITY; 6];
    let mut line_of = vec![0usize; placed.len()];
    for &i in &order {
        let (x, _, label) = placed[i];
        let px = x * px_per_x;
        let line = (0..line_end.len())
            .find(|&l| line_end[l] < px)
            .unwrap_or(i % line_end.len());
        line_end[line] = px + 8.0 + label.len() as f64 * 7.5;
        line_of[i] = line;
    }
    chart
        .draw_series(placed.iter().enumerate().map(|(i, &(x, y, label))| {
            let dy = -14 - 15 * line_of[i] as i32;
            EmptyElement::at((x, y))
                + Circle::new((0, 0), 5, BLUE.filled())
                + Text::new(label.to_string(), (8, dy), ("sans-serif", 13))
        }))
        .map_err(|e| err(&e))?;
    if none {
        let note = format!(
            "no false convictions at any of the {} setting(s) shown",
            placed.len()
        );
        chart
            .draw_series(std::iter::once(Text::new(
                note,
                (x0 + (x1 - x0) * 0.05, 0.6),
                ("sans-serif", 22),
            )))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(placed.len())
}

/// `tune --tail-plot FILE.svg`: the measured pauses' survival function (the fraction
/// of pauses longer than x) against the fitted tail's, both axes logarithmic, up to
/// the pause that comes once in ten times as many pauses as were measured. Where the
/// fit leaves the dots, its extrapolation is not to be trusted.
pub fn tail_plot(
    path: &Path,
    title: &str,
    samples: &[Duration],
    fit: &crate::tune::TailFit,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut v: Vec<f64> = samples
        .iter()
        .map(Duration::as_secs_f64)
        .filter(|x| *x > 0.0)
        .collect();
    if v.is_empty() {
        return Err(format!("{}: no pauses to plot", path.display()));
    }
    v.sort_by(|a, b| b.total_cmp(a));
    let n = v.len() as f64;
    // (x, P(X > x)) for the measured pauses, longest first: the i-th longest is
    // exceeded by i − 1 of n, plotted at i / n so the longest sits at 1/n.
    let empirical: Vec<(f64, f64)> = v
        .iter()
        .enumerate()
        .map(|(i, x)| (*x, (i + 1) as f64 / n))
        .collect();
    let x_max = fit.return_level(10.0 * n).max(v[0] * 1.5);
    let x_min = v[v.len() - 1].min(fit.threshold_s).max(1e-4);
    let steps = 200;
    let fitted: Vec<(f64, f64)> = (0..=steps)
        .map(|i| {
            let x = fit.threshold_s * (x_max / fit.threshold_s).powf(i as f64 / steps as f64);
            (x, fit.exceedance(x))
        })
        .filter(|(_, p)| *p > 0.0)
        .collect();
    let y_min = (0.1 / n).min(fitted.last().map_or(1.0, |p| p.1)).max(1e-12);
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d((x_min..x_max).log_scale(), (y_min..1.0).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("pause (s)")
        .y_desc("fraction of pauses longer")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(
            empirical
                .iter()
                .map(|&(x, p)| Circle::new((x, p), 3, BLUE.filled())),
        )
        .map_err(|e| err(&e))?
        .label("measured")
        .legend(|(x, y)| Circle::new((x, y), 3, BLUE.filled()));
    chart
        .draw_series(LineSeries::new(fitted, RED.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label(format!(
            "fitted tail: shape {:.2}, scale {:.3}s, above {:.3}s",
            fit.shape, fit.scale_s, fit.threshold_s
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .configure_series_labels()
        // Lower left: the data run from the upper left to the lower right.
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_labels() {
        let dir = std::env::temp_dir().join(format!("rumor-sim-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.svg");
        let pts = vec![
            PlotPoint {
                label: "acceptable_pause=1s".into(),
                detection_p99_s: Some(2.5),
                false_convictions: 7,
            },
            PlotPoint {
                label: "acceptable_pause=3s".into(),
                detection_p99_s: Some(4.5),
                false_convictions: 0,
            },
            PlotPoint {
                label: "no crash".into(),
                detection_p99_s: None,
                false_convictions: 0,
            },
        ];
        assert_eq!(plot(&path, "t", &pts).unwrap(), 2);
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        assert!(svg.contains("acceptable_pause=3s"));
        assert!(svg.contains("<circle"));
        assert!(!svg.contains("no false convictions"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn draws_the_tail_against_its_fit() {
        let dir = std::env::temp_dir().join(format!("rumor-sim-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tail.svg");
        let samples: Vec<Duration> = (1..=200)
            .map(|i| Duration::from_secs_f64(0.01 * (201.0 / f64::from(i)).ln() + 0.001))
            .collect();
        let fit = crate::tune::tail::fit(&samples, 1).expect("a fit");
        tail_plot(&path, "t", &samples, &fit).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(
            svg.matches("<circle").count() >= 200,
            "every measured pause is a dot"
        );
        assert!(svg.contains("fitted tail: shape") && svg.contains("measured"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn says_so_when_nothing_was_convicted() {
        let dir = std::env::temp_dir().join(format!("rumor-sim-plot0-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.svg");
        let pts: Vec<PlotPoint> = [2.0, 3.0]
            .iter()
            .map(|&x| PlotPoint {
                label: format!("x={x}"),
                detection_p99_s: Some(x),
                false_convictions: 0,
            })
            .collect();
        assert_eq!(plot(&path, "t", &pts).unwrap(), 2);
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("no false convictions at any of the 2 setting(s) shown"));
        // No negative tick on the count axis.
        assert!(
            !svg.contains(">-0.5<") && !svg.contains(">-1<"),
            "a negative count axis"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
