//! Fuzz the manifest reader: any byte string must give `Ok` or `Err`, never a panic, a hang or
//! runaway memory. `load_bytes` covers UTF-8 decoding, YAML parsing, `inherit:` (pointing into
//! a directory that does not exist), normalisation, validation, `${...}` substitution and the
//! typed model; `yaml::parse` is also called directly on the decoded text.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stackato_local::api::diag::FileId;
use stackato_local::api::manifest::{self, LoadOptions};

fuzz_target!(|data: &[u8]| {
    let opts = LoadOptions::new("/nonexistent-fuzz-dir");
    let _ = manifest::load_bytes(
        data,
        Path::new("/nonexistent-fuzz-dir/stackato.yml"),
        &opts,
        &mut |_q: &str| None,
    );
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = stackato_local::api::yaml::parse(text, FileId(0));
    }
});
