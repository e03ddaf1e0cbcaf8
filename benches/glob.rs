//! What one `ignores:` pattern costs against one path, for patterns that made the old
//! backtracking matcher take minutes. Run with `cargo bench --bench glob`. Target: ≤ 1 ms per
//! match for names of 10,000 characters and patterns of 100 `*`.

use std::hint::black_box;
use std::time::Instant;

use stackato_local::api::stage::ignores::Ignores;

/// Median and 90th percentile of one `is_ignored`, in microseconds, and its answer.
fn time(pattern: &str, rel: &str) -> (f64, f64, bool) {
    let ig = Ignores::new(Some(&[pattern.to_string()]));
    let answer = ig.is_ignored(rel, false);
    let mut times: Vec<f64> = (0..41)
        .map(|_| {
            let t0 = Instant::now();
            black_box(ig.is_ignored(black_box(rel), false));
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    (times[20], times[36], answer)
}

fn main() {
    let a40 = "a".repeat(40);
    let a10k = "a".repeat(10_000);
    let wide10k = "é".repeat(10_000);
    let cases: Vec<(&str, String, String)> = vec![
        (
            "the report: 12 `*`, `/`, 40-char name",
            "a*a*a*a*a*a*a*a*a*a*a*a*b/x".into(),
            format!("dir/{a40}"),
        ),
        (
            "100 `*` with `/` (segment stars), 10,000-char name",
            "a*".repeat(100) + "b/x",
            a10k.clone(),
        ),
        (
            "100 `*` without `/` (Tcl glob), 10,000-char name",
            "a*".repeat(100) + "b",
            a10k.clone(),
        ),
        (
            "100 `*` and 100 `?` with `/`, 10,000-char name",
            "?*".repeat(100) + "b/x",
            format!("{}/{a10k}", "x/".repeat(50)),
        ),
        (
            "`*`, 100 literals and a `?` (Tcl), 10,000-char name",
            format!("*{}?b", "a".repeat(100)),
            a10k.clone(),
        ),
        (
            "100 `*` and non-ASCII literals, 10,000 non-ASCII chars",
            "é*".repeat(100) + "ü/x",
            wide10k,
        ),
        (
            "100 `[…]` sets and `*` (Tcl), 10,000-char name",
            "[a-c]*".repeat(100) + "[!]",
            a10k,
        ),
    ];
    println!("| pattern × name | median per match | p90 of 41 | matched |");
    println!("|---|---|---|---|");
    let mut worst: f64 = 0.0;
    for (what, pattern, rel) in &cases {
        let (median, p90, answer) = time(pattern, rel);
        worst = worst.max(median);
        println!("| {what} | {median:.1} µs | {p90:.1} µs | {answer} |");
    }
    println!(
        "\nslowest median: {:.3} ms per match (target ≤ 1 ms){}",
        worst / 1000.0,
        if worst <= 1000.0 {
            ""
        } else {
            " — OVER TARGET"
        }
    );
}
