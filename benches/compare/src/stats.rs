//! Medians, percentiles and the per-scenario tables.

/// One contender's results, one value per round.
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile of an already sorted slice (`q` in 0..=1).
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Human-readable number: 1234567 -> "1.23M".
pub fn human(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let a = x.abs();
    if a >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}K", x / 1e3)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Prints the per-round values, the medians, then for each `(a, b)` pair the
/// ratio `a / b` per round and the median of those ratios.
pub fn print_table(title: &str, unit: &str, cols: &[Series], ratios: &[(usize, usize)]) {
    println!("\n### {title} ({unit})\n");
    let w = cols.iter().map(|c| c.name.len()).max().unwrap_or(8).max(9);
    let rounds = cols.iter().map(|c| c.values.len()).max().unwrap_or(0);
    print!("| {:<9} |", "round");
    for c in cols {
        print!(" {:>w$} |", c.name);
    }
    println!();
    print!("|{}|", "-".repeat(11));
    for _ in cols {
        print!("{}:|", "-".repeat(w + 1));
    }
    println!();
    for r in 0..rounds {
        print!("| {:<9} |", r + 1);
        for c in cols {
            print!(" {:>w$} |", c.values.get(r).map_or("-".into(), |v| human(*v)));
        }
        println!();
    }
    print!("| {:<9} |", "**median**");
    for c in cols {
        print!(" {:>w$} |", human(median(&c.values)));
    }
    println!();
    if ratios.is_empty() {
        return;
    }
    println!();
    for &(a, b) in ratios {
        let (ca, cb) = (&cols[a], &cols[b]);
        let per: Vec<f64> = ca.values.iter().zip(&cb.values).map(|(x, y)| x / y).collect();
        let list: Vec<String> = per.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "ratio {} / {}: per round [{}], median **{:.2}x**",
            ca.name,
            cb.name,
            list.join(", "),
            median(&per)
        );
    }
}

/// Runs every contender once per round, rotating the start so no contender
/// always runs first, and collects one series per (contender, metric).
pub type Run<'a> = Box<dyn FnMut() -> Vec<f64> + 'a>;

pub fn interleave(rounds: usize, names: &[&str], runs: &mut [Run<'_>], metrics: usize) -> Vec<Vec<Series>> {
    let mut out: Vec<Vec<Series>> = (0..metrics)
        .map(|_| {
            names
                .iter()
                .map(|n| Series {
                    name: n.to_string(),
                    values: vec![f64::NAN; rounds],
                })
                .collect()
        })
        .collect();
    let k = runs.len();
    // For profiling one contender: COMPARE_CONTENDER=substring of its name.
    let filter = std::env::var("COMPARE_CONTENDER").ok();
    for r in 0..rounds {
        for j in 0..k {
            let i = (r + j) % k;
            if filter.as_deref().is_some_and(|f| !names[i].contains(f)) {
                continue;
            }
            let m = (runs[i])();
            eprintln!(
                "  round {} {:<28} {}",
                r + 1,
                names[i],
                m.iter().map(|x| human(*x)).collect::<Vec<_>>().join(" ")
            );
            for (mi, v) in m.into_iter().enumerate().take(metrics) {
                out[mi][i].values[r] = v;
            }
        }
    }
    out
}
