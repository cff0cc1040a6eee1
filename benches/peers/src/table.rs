//! The comparison table: one row per measure and N, one column per library, then rumor's
//! ratios to each peer (below 1 means rumor spends less).

use crate::Library;

/// One row: a label and a value per library in [`Library::ALL`] order (`None`: not
/// measured or not supported, printed as "—").
pub struct Row {
    /// What the row measures.
    pub label: String,
    /// Values in [`Library::ALL`] order.
    pub values: [Option<f64>; 4],
    /// Decimal places to print.
    pub decimals: usize,
}

/// The median of `v` (the mean of the middle two for an even count), `None` if empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn cell(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "—".to_string(), |x| format!("{x:.decimals$}"))
}

const RATIOS: [(&str, usize, usize); 4] = [
    ("phi/foca", 2, 0),
    ("phi/kinship", 2, 1),
    ("swim/foca", 3, 0),
    ("swim/kinship", 3, 1),
];

fn cells(row: &Row) -> Vec<String> {
    let mut out = vec![row.label.clone()];
    out.extend(row.values.iter().map(|v| cell(*v, row.decimals)));
    out.extend(
        RATIOS
            .iter()
            .map(|&(_, a, b)| cell(ratio(row.values[a], row.values[b]), 2)),
    );
    out
}

fn heading() -> Vec<String> {
    let mut h = vec!["per member per period".to_string()];
    h.extend(Library::ALL.iter().map(|l| l.label().to_string()));
    h.extend(RATIOS.iter().map(|r| r.0.to_string()));
    h
}

/// The table as GitHub markdown.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::new();
    let line = |c: &[String]| format!("| {} |\n", c.join(" | "));
    let h = heading();
    s += &line(&h);
    s += &format!("|{}\n", "---|".repeat(h.len()));
    for r in rows {
        s += &line(&cells(r));
    }
    s
}

/// The table as aligned plain text.
pub fn plain(rows: &[Row]) -> String {
    let mut all = vec![heading()];
    all.extend(rows.iter().map(cells));
    let widths: Vec<usize> = (0..all[0].len())
        .map(|c| all.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for r in &all {
        for (c, text) in r.iter().enumerate() {
            let pad = widths[c] - text.chars().count();
            if c == 0 {
                s += &format!("{text}{}", " ".repeat(pad));
            } else {
                s += &format!("  {}{text}", " ".repeat(pad));
            }
        }
        s += "\n";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        let row = Row {
            label: "x".into(),
            values: [Some(2.0), None, Some(1.0), Some(4.0)],
            decimals: 1,
        };
        assert_eq!(
            cells(&row),
            ["x", "2.0", "—", "1.0", "4.0", "0.50", "—", "2.00", "—"]
        );
        assert!(markdown(&[row]).starts_with("| per member per period | foca |"));
    }
}
