#!/usr/bin/env bash
# Fuzz one target for SECONDS (default 600). The target is `manifest` (the default), `dotenv`,
# `envdump` or `glob`; name it before or after the seconds, or with TARGET=NAME. Any further
# arguments go to libFuzzer.
#
#   fuzz/run.sh                        # the manifest reader, 10 minutes
#   fuzz/run.sh 3600                   # the manifest reader, an hour
#   fuzz/run.sh 600 -len_control=0     # try long inputs (up to -max_len) from the start
#   fuzz/run.sh 600 dotenv             # .env files, `--env`, $VAR expansion
#   fuzz/run.sh envdump 1200           # `env diff FILE`: dumps, diffs and masking
#   fuzz/run.sh glob 300               # `ignores:` matching against its slow definition
#   TARGET=dotenv fuzz/run.sh 600
#
# Targets (fuzz/fuzz_targets/NAME.rs):
#   manifest  manifest::load_bytes and yaml::parse on any bytes
#   dotenv    env::dotenv::parse, env::user::{expand, parse_cli_pair, apply} on UTF-8 text
#   envdump   env::dump::parse, env::diff::diff and env::mask::Secrets on any bytes
#   glob      stage::glob::Glob and stage::ignores::Ignores against src/stage/glob_oracle.rs
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Works on the stable toolchain: cargo-fuzz needs
# nightly-only flags (-Zsanitizer), which RUSTC_BOOTSTRAP=1 unlocks.
#
# Seeds are read from fuzz/corpus/NAME/ (committed); new inputs go to fuzz/corpus/NAME-grown/
# (ignored). fuzz/NAME.dict is used when it exists. A crash, timeout or OOM is written to
# fuzz/artifacts/NAME/; minimise it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz tmin NAME fuzz/artifacts/NAME/crash-...
# then add it to tests/fuzz_regressions/ (manifest) or tests/fuzz_regressions_env/ (dotenv,
# envdump: name the file dotenv-* or envdump-*).
set -euo pipefail

usage() {
    echo "usage: $0 [TARGET] [SECONDS] [TARGET] [LIBFUZZER-FLAG...]   (TARGET: manifest, dotenv, envdump, glob)" >&2
    exit 64
}

target="${TARGET:-manifest}"
# A target name first: anything that is neither a number nor a libFuzzer flag.
if [[ $# -gt 0 && "$1" != -* && "$1" == *[!0-9]* ]]; then
    target="$1"
    shift
fi
secs="${1:-600}"
shift || true
case "$secs" in
    '' | *[!0-9]*) usage ;;
esac
# Or after the seconds.
if [[ $# -gt 0 && "$1" != -* ]]; then
    target="$1"
    shift
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

case "$target" in
    '' | *[!A-Za-z0-9_-]*) usage ;;
esac
if [[ ! -f "fuzz_targets/$target.rs" ]]; then
    echo "no fuzz target \`$target\` (fuzz/fuzz_targets/$target.rs)" >&2
    usage
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: run \`cargo install cargo-fuzz\`" >&2
    exit 69
fi

dict=()
if [[ -f "$target.dict" ]]; then
    dict=("-dict=$target.dict")
fi

mkdir -p "corpus/$target-grown" "corpus/$target"
# -max_len: real manifests, .env files and dumps are a few KiB. -rss_limit_mb / -timeout:
# report runaway memory or a single input taking more than 10 s as a bug (OOM / timeout
# artifacts).
export RUSTC_BOOTSTRAP=1
exec cargo fuzz run "$target" "corpus/$target-grown" "corpus/$target" -- \
    -max_len=4096 \
    -rss_limit_mb=2048 \
    -timeout=10 \
    -max_total_time="$secs" \
    "${dict[@]}" \
    -print_final_stats=1 \
    "$@"
