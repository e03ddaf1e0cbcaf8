#!/usr/bin/env bash
# Fuzz the manifest reader for $1 seconds (default 600). Any further arguments go to libFuzzer.
#
#   fuzz/run.sh                        # 10 minutes
#   fuzz/run.sh 3600                   # an hour
#   fuzz/run.sh 600 -len_control=0     # try long inputs (up to -max_len) from the start
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Works on the stable toolchain: cargo-fuzz needs
# nightly-only flags (-Zsanitizer), which RUSTC_BOOTSTRAP=1 unlocks.
#
# Seeds are read from fuzz/corpus/manifest/ (committed); new inputs go to
# fuzz/corpus/manifest-grown/ (ignored). A crash, timeout or OOM is written to
# fuzz/artifacts/manifest/; minimise it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz tmin manifest fuzz/artifacts/manifest/crash-...
# then add it to tests/fuzz_regressions/.
set -euo pipefail

secs="${1:-600}"
shift || true
case "$secs" in
    '' | *[!0-9]*)
        echo "usage: $0 [SECONDS] [LIBFUZZER-FLAG...]" >&2
        exit 64
        ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: run \`cargo install cargo-fuzz\`" >&2
    exit 69
fi

mkdir -p corpus/manifest-grown
# -max_len: real manifests are a few KiB. -rss_limit_mb / -timeout: report runaway memory
# or a single input taking more than 10 s as a bug (OOM / timeout artifacts).
export RUSTC_BOOTSTRAP=1
exec cargo fuzz run manifest corpus/manifest-grown corpus/manifest -- \
    -max_len=4096 \
    -rss_limit_mb=2048 \
    -timeout=10 \
    -max_total_time="$secs" \
    -dict=manifest.dict \
    -print_final_stats=1 \
    "$@"
