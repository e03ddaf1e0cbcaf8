//! The shared corpus of real-world stackato.yml files, and running a check over all of them
//! on a few threads.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// Where the corpus lives (next to this crate).
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/stackato-yml")
}

/// The corpus's `*.yml` files, sorted. `None` (after a loud `SKIPPED <test>` line) when the
/// folder is missing; panics when it holds none.
pub fn corpus_files(test: &str) -> Option<Vec<PathBuf>> {
    let dir = corpus_dir();
    if !dir.is_dir() {
        eprintln!(
            "\n!!!!!!!! SKIPPED {test}: folder {} is missing !!!!!!!!\n",
            dir.display()
        );
        return None;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml") && p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the corpus folder {} holds no *.yml",
        dir.display()
    );
    Some(files)
}

/// The file name of the corpus file `src`, and a temp dir holding it as `stackato.yml`.
pub fn corpus_app(src: &Path) -> (String, TempDir) {
    let file = src
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = std::fs::read(src).expect("read corpus file");
    (file, super::app_bytes(&[("stackato.yml", &bytes)]))
}

/// `examine` on each of `files`, spread over a few threads (each file runs in its own temp
/// dir); the outcomes in the order of `files`.
pub fn examine_all<T: Send>(files: &[PathBuf], examine: fn(&Path) -> T) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(4, |n| n.get())
        .clamp(1, 8);
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|f| examine(f)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("corpus worker thread"))
            .collect()
    })
}

/// `== <file>: <problem>` for each problem of each file.
pub fn failures<'a>(outcomes: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Vec<String> {
    outcomes
        .into_iter()
        .flat_map(|(file, problems)| problems.iter().map(move |p| format!("== {file}: {p}")))
        .collect()
}
