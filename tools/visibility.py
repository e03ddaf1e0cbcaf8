#!/usr/bin/env python3
"""Narrow `pub` to `pub(crate)` on every library item outside the crate's public surface.

The library (src/lib.rs) keeps its modules private and re-exports what the fuzz targets, the
benches and the integration tests need through `src/api.rs`; it also sets
`#![warn(unreachable_pub)]`. rustc's `unreachable_pub` lint knows exactly which `pub` items are
not reachable from outside the crate (it follows the re-exports in `api`, and the types, fields
and methods those expose), so this script does not guess: it checks the library (normally and
with `cfg(test)`), takes that lint's suggested replacement for each warning (`pub(crate)`) and
applies it. `pub(crate)`, `pub(super)`, `api` and whatever `api` reaches are left alone.
Idempotent: a second run finds no warning and changes nothing.

Run from anywhere: `python3 tools/visibility.py` (add `--check` to only report, exit 1 if a
change is due). Afterwards, `cargo build` reports what nothing uses any more (dead code).
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def suggestions(profile_args):
    """(file, byte_start, byte_end, replacement) for every unreachable_pub warning."""
    cmd = ["cargo", "check", "--lib", "--message-format=json", *profile_args]
    out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, check=False, text=True)
    found = set()
    failed = False
    for line in out.stdout.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") == "build-finished" and not msg.get("success"):
            failed = True
        if msg.get("reason") != "compiler-message":
            continue
        diag = msg["message"]
        code = (diag.get("code") or {}).get("code")
        if code != "unreachable_pub":
            continue
        for child in diag.get("children", []):
            for span in child.get("spans", []):
                rep = span.get("suggested_replacement")
                if rep is None:
                    continue
                found.add((span["file_name"], span["byte_start"], span["byte_end"], rep))
    if failed:
        sys.exit(f"visibility.py: `{' '.join(cmd)}` failed; fix the build first")
    return found


def main():
    check_only = "--check" in sys.argv[1:]
    edits = suggestions([]) | suggestions(["--profile", "test"])
    by_file = {}
    for name, start, end, rep in edits:
        by_file.setdefault(name, []).append((start, end, rep))
    for name, spans in sorted(by_file.items()):
        path = os.path.join(ROOT, name)
        with open(path, "rb") as f:
            data = f.read()
        for start, end, rep in sorted(spans, reverse=True):
            if data[start:end] != b"pub":
                sys.exit(f"visibility.py: {name}:{start}: expected `pub`, found {data[start:end]!r}")
            data = data[:start] + rep.encode() + data[end:]
        if check_only:
            print(f"{name}: {len(spans)} item(s) to narrow")
            continue
        with open(path, "wb") as f:
            f.write(data)
        print(f"{name}: {len(spans)} item(s) narrowed to pub(crate)")
    if check_only and by_file:
        sys.exit(1)
    if not by_file:
        print("visibility.py: nothing to change")


if __name__ == "__main__":
    main()
