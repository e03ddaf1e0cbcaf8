//! How trust output is printed: every string from a repository (commands, values, paths) goes
//! through [`escape`], so a carriage return, an escape sequence or a bidi override cannot hide
//! one command behind another on a terminal; and the listing and "what changed" texts.

use std::fmt::Write as _;

use crate::trust::record::{Diff, Shown};

/// Characters that reorder or hide text without being control characters.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{206a}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

/// `s` with every control character (C0, DEL, C1), bidi control and invisible format
/// character shown visibly: `\r`, `\n`, `\t`, `\x1b`, `\u{202e}`. Printable text is unchanged.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || is_invisible_format(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A path, escaped.
pub(crate) fn path(p: &std::path::Path) -> String {
    escape(&p.to_string_lossy())
}

/// A path as the user knows it (relative to the working directory when below it), escaped.
pub(crate) fn rel_path(p: &std::path::Path) -> String {
    escape(&crate::diag::display_path(p))
}

/// One line per shown item: `  what: text\n`.
pub(crate) fn listing(shown: &[Shown]) -> String {
    shown
        .iter()
        .map(|s| format!("  {}: {}\n", escape(&s.what), escape(&s.text)))
        .collect()
}

/// What changed since `allow`, one line each.
pub(crate) fn diff(d: &Diff) -> String {
    let mut out = String::new();
    for f in &d.files_added {
        let _ = writeln!(out, "  file added: {}", rel_path(std::path::Path::new(f)));
    }
    for f in &d.files_removed {
        let _ = writeln!(out, "  file removed: {}", rel_path(std::path::Path::new(f)));
    }
    for f in &d.files_changed {
        let _ = writeln!(out, "  file changed: {}", rel_path(std::path::Path::new(f)));
    }
    for s in &d.shown_added {
        let _ = writeln!(out, "  added: {}: {}", escape(&s.what), escape(&s.text));
    }
    for s in &d.shown_removed {
        let _ = writeln!(out, "  removed: {}: {}", escape(&s.what), escape(&s.text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_shown_visibly() {
        assert_eq!(escape("ls -l"), "ls -l");
        assert_eq!(escape("a\rb"), "a\\rb");
        assert_eq!(escape("a\x1b[2Kb"), "a\\x1b[2Kb");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape("\u{85}\u{7f}\0"), "\\u{85}\\x7f\\x00");
        assert_eq!(escape("é ü 日本"), "é ü 日本");
    }

    #[test]
    fn escaped_text_has_no_control_characters() {
        for s in [
            "\r\n\t\x1b\x07\x08",
            "\u{9b}31m",
            "\u{2066}\u{2069}\u{200d}",
        ] {
            let e = escape(s);
            assert!(
                !e.chars().any(|c| c.is_control() || is_invisible_format(c)),
                "{e:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn nothing_escaped_can_move_the_cursor_or_reorder_text(s in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}\\u{2000}-\\u{206f}a]*") {
            let e = escape(&s);
            proptest::prop_assert!(!e.chars().any(|c| c.is_control() || is_invisible_format(c)));
            // Printable text is kept as it is.
            if !s.chars().any(|c| c.is_control() || is_invisible_format(c)) {
                proptest::prop_assert_eq!(e, s);
            }
        }
    }
}
