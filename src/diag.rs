//! Diagnostics: source files we read, spans into them, and rendering errors and warnings as
//! `file:line:col` with a snippet, a caret and a hint.

use std::fmt;
use std::path::{Path, PathBuf};

use annotate_snippets::renderer::DecorStyle;
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// Index of a file in [`Sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileId(pub u32);

/// A place in a source file: byte range plus 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
    pub line: u32,
    pub col: u32,
}

impl Span {
    pub fn point(file: FileId, line: u32, col: u32, start: u32) -> Span {
        Span {
            file,
            start,
            end: start,
            line,
            col,
        }
    }
}

/// One file that was read, kept for snippets.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// How the path is shown to the user (relative to the working directory when possible).
    pub display: String,
    pub text: String,
}

/// All files read while loading one manifest (the root and everything it inherits).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, path: &Path, text: String) -> FileId {
        let display = display_path(path);
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            display,
            text,
        });
        FileId((self.files.len() - 1) as u32)
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// `file:line:col` for a span.
    pub(crate) fn locate(&self, span: Span) -> String {
        match self.get(span.file) {
            Some(f) => format!("{}:{}:{}", f.display, span.line, span.col),
            None => format!("{}:{}", span.line, span.col),
        }
    }
}

/// Show `path` relative to the current directory when it lies below it.
pub(crate) fn display_path(path: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = path.strip_prefix(&cwd)
            && !rel.as_os_str().is_empty()
        {
            return rel.display().to_string();
        }
        if let (Ok(c), Ok(p)) = (cwd.canonicalize(), path.canonicalize())
            && let Ok(rel) = p.strip_prefix(&c)
            && !rel.as_os_str().is_empty()
        {
            return rel.display().to_string();
        }
    }
    path.display().to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem found in the user's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub(crate) span: Option<Span>,
    /// Short text under the caret.
    pub label: Option<String>,
    /// "did you mean …", "quote the value", …
    pub hint: Option<String>,
    /// Secondary places ("first defined here").
    pub(crate) related: Vec<(String, Span)>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: None,
            label: None,
            hint: None,
            related: Vec::new(),
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn hint_opt(mut self, hint: Option<String>) -> Self {
        if hint.is_some() {
            self.hint = hint;
        }
        self
    }

    pub(crate) fn related(mut self, label: impl Into<String>, span: Span) -> Self {
        self.related.push((label.into(), span));
        self
    }

    pub(crate) fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Render with a snippet when the span's file is known.
    pub fn render(&self, sources: &Sources, color: bool) -> String {
        let level = match self.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        }
        .decor_style(DecorStyle::Ascii);
        let title = level.primary_title(self.message.as_str());
        let mut groups: Vec<Group<'_>> = Vec::new();
        match self.span.and_then(|s| sources.get(s.file).map(|f| (s, f))) {
            Some((span, file)) => {
                // Only the lines the annotations cover go to the renderer: it scans its
                // whole source, and manifests can be large.
                let mut spans = vec![span];
                spans.extend(
                    self.related
                        .iter()
                        .filter(|(_, r)| r.file == span.file)
                        .map(|(_, r)| *r),
                );
                let (win, base, line) = window(&file.text, &spans);
                let (start, end) = clamp(&file.text, span);
                let mut snippet = Snippet::source(win)
                    .line_start(line as usize)
                    .path(file.display.as_str())
                    .fold(true)
                    .annotation(
                        AnnotationKind::Primary
                            .span(start - base..end - base)
                            .label(self.label.as_deref().unwrap_or("")),
                    );
                for (label, rspan) in &self.related {
                    if rspan.file == span.file {
                        let (s, e) = clamp(&file.text, *rspan);
                        snippet = snippet.annotation(
                            AnnotationKind::Context
                                .span(s - base..e - base)
                                .label(label),
                        );
                    }
                }
                groups.push(title.element(snippet));
            }
            None => groups.push(Group::with_title(title)),
        }
        for (label, rspan) in &self.related {
            if Some(rspan.file) != self.span.map(|s| s.file)
                && let Some(file) = sources.get(rspan.file)
            {
                let (win, base, line) = window(&file.text, &[*rspan]);
                let (s, e) = clamp(&file.text, *rspan);
                groups.push(
                    Level::NOTE.secondary_title(label.as_str()).element(
                        Snippet::source(win)
                            .line_start(line as usize)
                            .path(file.display.as_str())
                            .fold(true)
                            .annotation(AnnotationKind::Primary.span(s - base..e - base)),
                    ),
                );
            }
        }
        if let Some(h) = &self.hint {
            groups.push(Group::with_title(Level::HELP.secondary_title(h.as_str())));
        }
        renderer.render(&groups)
    }

    /// One line: `file:line:col: error: message`.
    pub fn short(&self, sources: &Sources) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.span {
            Some(s) => format!("{}: {sev}: {}", sources.locate(s), self.message),
            None => format!("{sev}: {}", self.message),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The whole lines covering `spans` (all in one file): the text, its byte offset in the file
/// and the number of its first line.
fn window<'t>(text: &'t str, spans: &[Span]) -> (&'t str, usize, u32) {
    let first = spans
        .iter()
        .min_by_key(|s| s.start)
        .copied()
        .unwrap_or_default();
    let lo = clamp(text, first).0;
    let hi = spans
        .iter()
        .map(|s| clamp(text, *s).1)
        .max()
        .unwrap_or(lo)
        .max(lo);
    let begin = text[..lo].rfind('\n').map_or(0, |i| i + 1);
    let end = text[hi..].find('\n').map_or(text.len(), |i| hi + i);
    (&text[begin..end], begin, first.line.max(1))
}

/// Keep a span inside the text and on character boundaries.
fn clamp(text: &str, span: Span) -> (usize, usize) {
    let mut s = (span.start as usize).min(text.len());
    while s > 0 && !text.is_char_boundary(s) {
        s -= 1;
    }
    let mut e = (span.end as usize).clamp(s, text.len());
    while e < text.len() && !text.is_char_boundary(e) {
        e += 1;
    }
    (s, e)
}

/// The closest candidate to `word`, for "did you mean" hints.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&w, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        let keys = ["post-staging", "pre-staging", "pre-running"];
        assert_eq!(suggest("post_staging", keys), Some("post-staging"));
        assert_eq!(suggest("prerunning", keys), Some("pre-running"));
        assert_eq!(suggest("banana", keys), None);
    }

    #[test]
    fn renders_file_line_col_and_caret() {
        let mut src = Sources::default();
        let id = src.add(
            Path::new("/x/stackato.yml"),
            "name: a\ninstances: many\n".into(),
        );
        let d = Diagnostic::error("expected an integer")
            .at(Span {
                file: id,
                start: 19,
                end: 23,
                line: 2,
                col: 12,
            })
            .hint("write a number");
        let out = d.render(&src, false);
        assert!(out.contains("stackato.yml:2:12"), "{out}");
        assert!(out.contains("^^^^"), "{out}");
        assert!(out.contains("help: write a number"), "{out}");
    }
}
