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

What the lint cannot see: a `pub` type that `api` reaches keeps its `pub` fields and methods
reachable, so the dead-code lint never looks at them. A second step narrows those the
outside users cannot be using: a `pub` field or method (indented, directly inside a `pub struct`
or an `impl` of a `pub` type) whose name appears nowhere under tests/, benches/ or
fuzz/fuzz_targets/. (A name that does appear is kept, even if for something else: the step
only ever narrows what no user can name.) If a user needs one later, make it `pub` again.

Run from anywhere: `python3 tools/visibility.py` (add `--check` to only report, exit 1 if a
change is due). Afterwards, `cargo build` reports what nothing uses any more (dead code).
"""

import glob
import json
import os
import re
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


ITEM = re.compile(r"^( +)pub (?:(?:const |async |unsafe )*fn (\w+)|(\w+):)")
HEADER = re.compile(r"^\s*(?:pub )?struct (\w+)|^\s*impl(?:<[^>]*>)? (\w+)")
PUB_TYPE = re.compile(r"^pub (?:struct|enum|trait|type) (\w+)", re.M)


def unnamed_members():
    """(file, line index) of `pub` fields/methods of `pub` types that no outside user names."""
    outside = [
        *glob.glob(os.path.join(ROOT, "tests/**/*.rs"), recursive=True),
        *glob.glob(os.path.join(ROOT, "benches/*.rs")),
        *glob.glob(os.path.join(ROOT, "fuzz/fuzz_targets/*.rs")),
    ]
    words = set()
    for f in outside:
        with open(f, encoding="utf-8") as fh:
            words.update(re.findall(r"\w+", fh.read()))
    skip = {os.path.join(ROOT, "src", n) for n in ("api.rs", "lib.rs", "main.rs")}
    sources = [f for f in glob.glob(os.path.join(ROOT, "src/**/*.rs"), recursive=True)
               if f not in skip]
    texts = {}
    pub_types = set()
    for f in sources:
        with open(f, encoding="utf-8") as fh:
            texts[f] = fh.read()
        pub_types.update(PUB_TYPE.findall(texts[f]))
    found = {}
    for f, text in texts.items():
        lines = text.split("\n")
        for i, line in enumerate(lines):
            m = ITEM.match(line)
            if not m:
                continue
            indent, name = len(m.group(1)), m.group(2) or m.group(3)
            header = ""
            for j in range(i - 1, -1, -1):
                h = lines[j]
                if h.strip() and len(h) - len(h.lstrip()) < indent:
                    header = h
                    break
            hm = HEADER.match(header)
            if hm and (hm.group(1) or hm.group(2)) in pub_types and name not in words:
                found.setdefault(f, []).append(i)
    return found


def narrow_members(check_only):
    found = unnamed_members()
    for path, indexes in sorted(found.items()):
        name = os.path.relpath(path, ROOT)
        if check_only:
            print(f"{name}: {len(indexes)} member(s) of api types to narrow")
            continue
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        for i in indexes:
            lines[i] = lines[i].replace("pub ", "pub(crate) ", 1)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines))
        print(f"{name}: {len(indexes)} member(s) of api types narrowed to pub(crate)")
    return bool(found)


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
    members = narrow_members(check_only)
    if check_only and (by_file or members):
        sys.exit(1)
    if not by_file and not members:
        print("visibility.py: nothing to change")


if __name__ == "__main__":
    main()
