//! What the staged copy costs on the 50,000-file tree (500 directories × 100 files of 1 KiB):
//! the first copy of the upload (the walk included), an instance's clone of the staged tree,
//! the comparison of the checkout with the copy when nothing changed (what a run does in the
//! background at start-up), and syncing one edit into a staged tree and two instances. Run with
//! `cargo bench --bench copy`; it says whether this filesystem shares blocks (reflinks).

use std::path::Path;
use std::time::Instant;

use stackato_local::api::stage::copy::{self, Changes, Source};

fn tree(root: &Path) {
    let body = vec![b'x'; 1024];
    for d in 0..500 {
        let dir = root.join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f:03}.txt")), &body).expect("write");
        }
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    let base = std::env::var_os("COPY_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let t = tempfile::tempdir_in(&base).expect("temp dir");
    let app = t.path().join("app");
    tree(&app);
    let src = Source {
        root: app.clone(),
        ignores: None,
        copy_unsafe_links: false,
    };
    let staged = t.path().join("staged");
    let t0 = Instant::now();
    let (mut rec, stats) = copy::populate(&src, &staged).expect("populate");
    let populate = ms(t0);
    let t0 = Instant::now();
    copy::clone_tree(&staged, &t.path().join("i0")).expect("clone");
    let clone0 = ms(t0);
    copy::clone_tree(&staged, &t.path().join("i1")).expect("clone");
    let t0 = Instant::now();
    let nothing = copy::diff(&src, &rec).expect("diff");
    let diff = ms(t0);
    assert!(nothing.is_empty());
    std::fs::write(app.join("d250/f050.txt"), b"edited, and longer than before").expect("edit");
    let targets = [staged.clone(), t.path().join("i0"), t.path().join("i1")];
    let t0 = Instant::now();
    let changes = Changes {
        changed: vec!["d250/f050.txt".into()],
        ..Changes::default()
    };
    copy::sync(&src, &targets, &changes, &mut rec).expect("sync");
    let sync = ms(t0);
    println!(
        "staged copy, {} files of 1 KiB in 500 directories, on {} ({}):",
        stats.files,
        base.display(),
        if stats.reflinked == stats.files {
            "reflinks"
        } else if stats.reflinked == 0 {
            "no reflinks: bytes copied"
        } else {
            "some reflinks"
        }
    );
    println!("  first copy of the upload (walk + copy): {populate:.0} ms");
    println!("  one instance's clone of the staged tree:  {clone0:.0} ms");
    println!("  checkout vs copy, nothing changed (background check at start-up): {diff:.0} ms");
    println!("  one edit synced into the staged tree and 2 instances: {sync:.2} ms");
}
