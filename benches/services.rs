//! Service start times: cold (first start, data directory initialised) and warm (stopped,
//! started again) for each server type installed here, through the same code `run` uses.
//! Run with `cargo bench --bench services`. Targets (warm, 2-core machine): postgres ≤ 1.5 s,
//! MariaDB ≤ 3 s, redis and memcached ≤ 0.3 s.
#![allow(clippy::disallowed_methods)] // tests drive the real binary from outside

use std::time::{Duration, Instant};

use stackato_local::api::manifest::{self, LoadOptions};
use stackato_local::api::random::OsRng;
use stackato_local::api::services::backend;
use stackato_local::api::services::lifecycle::{self, DbMode, Mode, StartOptions};
use stackato_local::api::services::paths::RunAs;
use stackato_local::api::services::registry;
use stackato_local::api::state::StateDir;

const WARM_RUNS: usize = 7;

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let targets = [
        ("postgresql", 1.5),
        ("mysql", 3.0),
        ("redis", 0.3),
        ("memcached", 0.3),
    ];
    println!(
        "| service | cold start | warm start (median of {WARM_RUNS}) | warm min | warm max | target (warm) | stop (median) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (kind, target) in targets {
        let Some(b) = stackato_local::api::services::for_kind(kind) else {
            continue;
        };
        if backend::find(b).is_err() {
            println!("| {kind} | not installed | | | | ≤ {target} s | |");
            continue;
        }
        match bench(kind) {
            Ok((cold, mut warm, mut stops)) => {
                let med = median(&mut warm);
                println!(
                    "| {kind} | {:.3} s | {:.3} s | {:.3} s | {:.3} s | ≤ {target} s {} | {:.3} s |",
                    cold.as_secs_f64(),
                    med.as_secs_f64(),
                    warm[0].as_secs_f64(),
                    warm[warm.len() - 1].as_secs_f64(),
                    if med.as_secs_f64() <= target {
                        "✔"
                    } else {
                        "✘"
                    },
                    median(&mut stops).as_secs_f64()
                );
            }
            Err(e) => println!("| {kind} | failed: {e} | | | | | |"),
        }
    }
}

fn bench(kind: &str) -> Result<(Duration, Vec<Duration>, Vec<Duration>), String> {
    let t = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = t.path().to_path_buf();
    let text = format!("name: bench\nservices:\n  bench-svc: {kind}\n");
    std::fs::write(dir.join("stackato.yml"), &text).map_err(|e| e.to_string())?;
    let mut ask = |_: &str| None;
    let loaded = manifest::load(&LoadOptions::new(&dir), &mut ask).map_err(|e| e.to_string())?;
    let state = StateDir::open(&dir).map_err(|e| e.to_string())?;
    let records =
        registry::provision(&state, &loaded.manifest, &mut OsRng).map_err(|e| e.to_string())?;
    let mut planned =
        lifecycle::plan(&state, &records, DbMode::Native, &[]).map_err(|e| e.to_string())?;
    let opts = StartOptions {
        timeout: Duration::from_secs(120),
        ..StartOptions::default()
    };
    let Mode::Native(b, _) = planned[0].mode.clone() else {
        return Err("not a server".into());
    };
    let stop = |planned: &lifecycle::Planned| -> Result<Duration, String> {
        let t0 = Instant::now();
        lifecycle::stop(&state, &planned.record, b, Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        Ok(t0.elapsed())
    };
    let t0 = Instant::now();
    lifecycle::start_all(&state, &mut planned, &opts, &mut |_| {}).map_err(|e| e.to_string())?;
    let cold = t0.elapsed();
    let mut stops = vec![stop(&planned[0])?];
    let mut warm = Vec::new();
    for _ in 0..WARM_RUNS {
        let t0 = Instant::now();
        lifecycle::start_all(&state, &mut planned, &opts, &mut |_| {})
            .map_err(|e| e.to_string())?;
        warm.push(t0.elapsed());
        stops.push(stop(&planned[0])?);
    }
    // Remove root-owned data outside the temp dir.
    if let Ok(run_as) = RunAs::for_services() {
        let paths = lifecycle::paths_for(&state, &planned[0].record.name, &run_as);
        let _ = std::fs::remove_dir_all(&paths.root);
    }
    Ok((cold, warm, stops))
}
