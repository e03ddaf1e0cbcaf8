//! What PHP's built-in server does NOT apply of an app's `.htaccess`: the router
//! (`templates/php-router.php`) applies `DirectoryIndex`, `FallbackResource`, `RewriteEngine`,
//! `RewriteBase /`, `RewriteCond %{REQUEST_FILENAME} [!]-f|[!]-d` and `RewriteRule` with a
//! regex (not negated) and the flags L, END, QSA, NC, R, R=<code>; `run` names every other
//! line once when it starts, so nothing is dropped silently. Apache applies them all itself.

use std::path::Path;

/// The flags of a `RewriteRule` the router applies.
fn flag_applied(f: &str) -> bool {
    matches!(f, "L" | "END" | "QSA" | "NC" | "R")
        || f.strip_prefix("R=")
            .is_some_and(|c| c.parse::<u16>().is_ok())
}

/// The lines of `text` (numbered from 1) the router does not apply, with why when a line is
/// skipped because of another.
pub(crate) fn not_applied(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cond_dropped = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        let w: Vec<&str> = t.split_whitespace().collect();
        let Some(first) = w.first() else { continue };
        if first.starts_with('#') {
            continue;
        }
        let applied = match first.to_ascii_lowercase().as_str() {
            "directoryindex" | "fallbackresource" | "rewriteengine" => true,
            "rewritebase" => w.get(1) == Some(&"/"),
            // The router behaves as if the module were there (mod_rewrite, mod_dir).
            s if s.starts_with("<ifmodule") || s.starts_with("</ifmodule") => true,
            // The built-in server lists no directory: -Indexes is what it does anyway.
            "options" => w[1..]
                .iter()
                .all(|o| matches!(*o, "-Indexes" | "-MultiViews")),
            "rewritecond" => {
                let ok = w.get(1) == Some(&"%{REQUEST_FILENAME}")
                    && w.get(2)
                        .is_some_and(|c| matches!(*c, "-f" | "!-f" | "-d" | "!-d"));
                cond_dropped |= !ok;
                ok
            }
            "rewriterule" => {
                let flags = w
                    .get(3)
                    .map(|f| f.trim_matches(['[', ']']).to_ascii_uppercase());
                let ok = w.len() >= 3
                    && !w[1].starts_with('!')
                    && flags
                        .as_deref()
                        .is_none_or(|f| f.split(',').all(flag_applied));
                let dropped = std::mem::take(&mut cond_dropped);
                if ok && dropped {
                    out.push((i + 1, format!("{t}  (its RewriteCond is not applied)")));
                    continue;
                }
                ok
            }
            _ => false,
        };
        if !applied {
            out.push((i + 1, t.to_string()));
        }
    }
    out
}

/// The note `run` prints for the document root `doc` served by the built-in server, when its
/// `.htaccess` has lines the router does not apply.
pub(crate) fn note(doc: &Path) -> Option<String> {
    let text = std::fs::read_to_string(doc.join(".htaccess")).ok()?;
    let lines = not_applied(&text);
    if lines.is_empty() {
        return None;
    }
    let list: Vec<String> = lines
        .iter()
        .map(|(n, l)| format!("    .htaccess:{n}: {l}"))
        .collect();
    Some(format!(
        "PHP's built-in server does not apply these .htaccess lines (Apache with mod_php would: `apt-get install apache2 libapache2-mod-php`):\n{}",
        list.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_the_router_does_not_apply() {
        let t = "# c\nRewriteEngine On\n<IfModule mod_rewrite.c>\nDirectoryIndex home.php\n\
                 RewriteRule ^api/(.*)$ api.php?path=$1 [L,QSA]\nRewriteRule ^old$ /new [R=301,L]\n\
                 Header set X-A b\nRewriteCond %{HTTP_HOST} ^www\nRewriteRule ^(.*)$ x [L]\n\
                 RewriteRule ^a$ b [L,PT]\nOptions -Indexes\n</IfModule>\n";
        let n = not_applied(t);
        let lines: Vec<usize> = n.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![7, 8, 9, 10], "{n:?}");
        assert!(n[2].1.contains("its RewriteCond is not applied"));
    }
}
