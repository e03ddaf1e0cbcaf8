//! Fuzz `ignores:` matching: the linear-time matcher (`stage::glob::Glob`, both syntaxes) and a
//! whole one-pattern ignore list (`stage::ignores::Ignores`, with its trimming, trailing `/`,
//! leading `/`, fast paths and the always-ignored names) against the slow obvious definition
//! (src/stage/glob_oracle.rs, memoised recursion), on short inputs; on long ones, no panic and
//! no hang (libFuzzer's -timeout).
//!
//! Input: one flag byte (bit 0: the path is a directory; bit 1: the substring pattern is
//! anchored), then UTF-8 text `PATTERN\nPATH` (decoded lossily, as the walk decodes names).

#![no_main]

use libfuzzer_sys::fuzz_target;
use stackato_local::api::stage::glob::Glob;
use stackato_local::api::stage::ignores::Ignores;

#[path = "../../src/stage/glob_oracle.rs"]
mod oracle;

/// Longest pattern and path (in characters) compared with the oracle.
const ORACLE_MAX: usize = 200;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (is_dir, anchored) = (flags & 1 == 1, flags & 2 == 2);
    let text = String::from_utf8_lossy(rest);
    let (pattern, rel) = text.split_once('\n').unwrap_or((&text, ""));
    let whole = Glob::whole(pattern).matches(rel);
    let sub = Glob::substring(pattern, anchored).matches(rel);
    let ignored = Ignores::new(Some(&[pattern.to_string()])).is_ignored(rel, is_dir);
    if pattern.chars().count() <= ORACLE_MAX && rel.chars().count() <= ORACLE_MAX {
        assert_eq!(
            whole,
            oracle::whole(pattern, rel),
            "whole {pattern:?} {rel:?}"
        );
        assert_eq!(
            sub,
            oracle::substring(pattern, anchored, rel),
            "substring (anchored: {anchored}) {pattern:?} {rel:?}"
        );
        assert_eq!(
            ignored,
            oracle::ignored(pattern, rel, is_dir),
            "ignores: [{pattern:?}] {rel:?} (dir: {is_dir})"
        );
    }
});
