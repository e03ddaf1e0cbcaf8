//! The per-application manifest `push` uploaded (the client's `debug-upload-manifest`): one
//! application of the normalised tree, wrapped the way the target's API version expected.
//!
//! The client started from the chosen application's normalised entry and wrapped it:
//! - API 1 (CF v1, Stackato 2.x): `applications` is a mapping with the single key `.`; the
//!   entry loses its `path` (the upload *is* that directory).
//! - API 2 (CF v2, Stackato 3.x): `applications` is a one-element sequence; `path` is made
//!   relative to the root manifest's directory again (`.` for that directory itself, left
//!   absolute when the app lives outside it).
//!
//! Every other top-level key of the manifest (`properties`, unknown CF keys) is copied as is,
//! unless the application entry has a key of the same name.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::yaml::{Entry, Node};

/// The target's API version, which decides the upload manifest's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// CF v1 API (Stackato 2.x): `applications: {.: {…}}`, no `path`.
    V1,
    /// CF v2 API (Stackato 3.x): `applications: [{…, path: RELATIVE}]`.
    V2,
}

impl FromStr for Api {
    type Err = BadApi;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "1" => Ok(Api::V1),
            "2" => Ok(Api::V2),
            _ => Err(BadApi(s.to_string())),
        }
    }
}

/// An API version other than 1 or 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("API version must be 1 (CF v1, Stackato 2.x) or 2 (CF v2, Stackato 3.x), not \"{0}\"")]
pub(crate) struct BadApi(pub String);

/// Why no upload manifest can be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UploadError {
    /// The manifest defines no application of that name (`known` lists the ones it has).
    UnknownApp { app: String, known: Vec<String> },
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The client's words.
            UploadError::UnknownApp { app, .. } => write!(f, "Failed to find '{app}' in manifest."),
        }
    }
}

impl std::error::Error for UploadError {}

/// The upload manifest for application `app` of the normalised, resolved `tree` (as
/// [`super::Loaded::tree`]) whose root manifest file lives in `manifest_dir`.
pub(crate) fn build(
    tree: &Node,
    manifest_dir: &Path,
    app: &str,
    api: Api,
) -> Result<Node, UploadError> {
    let span = tree.span;
    let apps = tree
        .get("applications")
        .and_then(Node::as_map)
        .unwrap_or(&[]);
    let Some(found) = apps.iter().find(|e| e.key.scalar_text() == Some(app)) else {
        return Err(UploadError::UnknownApp {
            app: app.to_string(),
            known: apps
                .iter()
                .filter_map(|e| e.key.scalar_text().map(str::to_string))
                .collect(),
        });
    };
    let mut entry = found.value.clone();
    let applications = match api {
        Api::V1 => {
            entry.remove("path");
            Node::map(
                vec![Entry {
                    key: Node::scalar(".", found.key.span),
                    value: entry.clone(),
                }],
                span,
            )
        }
        Api::V2 => {
            if let Some(p) = entry.get("path").and_then(Node::as_str) {
                let rel = relative_to(Path::new(p), manifest_dir);
                let at = entry.get("path").map_or(span, |n| n.span);
                entry.insert(Node::scalar("path", at), Node::scalar(rel, at));
            }
            Node::seq(vec![entry.clone()], span)
        }
    };
    let mut out = vec![Entry {
        key: Node::scalar("applications", span),
        value: applications,
    }];
    for e in tree.as_map().unwrap_or(&[]) {
        let Some(k) = e.key.scalar_text() else {
            continue;
        };
        if k == "applications" || entry.get(k).is_some() {
            continue;
        }
        out.push(e.clone());
    }
    Ok(Node::map(out, span))
}

/// `path` relative to `base` as the client wrote it: `.` for `base` itself, the remainder for a
/// path inside it (component-wise), the path unchanged otherwise.
fn relative_to(path: &Path, base: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rest) if rest.as_os_str().is_empty() => ".".to_string(),
        Ok(rest) => rest.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{LoadOptions, load_bytes};
    use serde_json::json;

    fn upload(files: &[(&str, &str)], app: &str, api: Api) -> Result<serde_json::Value, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        for (name, text) in files {
            let p = dir.path().join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::write(&p, text).map_err(|e| e.to_string())?;
        }
        let root = dir.path().join(files[0].0);
        let bytes = std::fs::read(&root).map_err(|e| e.to_string())?;
        let opts = LoadOptions::new(dir.path());
        let mut never = |_: &str| None;
        let loaded = load_bytes(&bytes, &root, &opts, &mut never).map_err(|e| e.to_string())?;
        let base = dir.path().canonicalize().map_err(|e| e.to_string())?;
        build(&loaded.tree, &base, app, api)
            .map(|n| n.to_json())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn api_versions_parse_and_others_are_refused() {
        assert_eq!("1".parse::<Api>(), Ok(Api::V1));
        assert_eq!("2".parse::<Api>(), Ok(Api::V2));
        assert!("3".parse::<Api>().is_err());
        assert!("v2".parse::<Api>().is_err());
    }

    #[test]
    fn v1_keys_the_app_by_dot_and_drops_its_path() {
        let got = upload(
            &[("stackato.yml", "name: web\nmem: 128M\n")],
            "web",
            Api::V1,
        );
        assert_eq!(
            got,
            Ok(json!({"applications": {".": {"name": "web", "memory": "128M"}}}))
        );
    }

    #[test]
    fn v2_lists_the_app_with_a_relative_path() {
        let m = "applications:\n  sub/a:\n    name: a\n  b:\n    name: b\n";
        let got = upload(&[("manifest.yml", m)], "a", Api::V2);
        assert_eq!(
            got,
            Ok(json!({"applications": [{"name": "a", "path": "sub/a"}]}))
        );
        let got = upload(&[("stackato.yml", "name: top\n")], "top", Api::V2);
        assert_eq!(
            got,
            Ok(json!({"applications": [{"name": "top", "path": "."}]}))
        );
    }

    #[test]
    fn other_top_level_keys_travel_unless_the_app_has_them() {
        // An unknown CF top-level key is kept at the top (and under properties), and copied
        // into each app as a default: the app's copy wins, so the top-level one is not repeated.
        let m = "applications:\n- name: a\n  path: .\nproperties:\n  color: blue\nextra: 5\n";
        let got = upload(&[("manifest.yml", m)], "a", Api::V1);
        assert_eq!(
            got,
            Ok(json!({
                "applications": {".": {"name": "a", "extra": "5"}},
                "properties": {"color": "blue", "extra": "5"}
            }))
        );
    }

    #[test]
    fn an_unknown_app_is_the_clients_error() {
        let got = upload(&[("stackato.yml", "name: web\n")], "X", Api::V2);
        assert_eq!(got, Err("Failed to find 'X' in manifest.".to_string()));
    }

    #[test]
    fn a_path_outside_the_manifest_dir_stays_absolute() {
        assert_eq!(
            relative_to(Path::new("/srv/app"), Path::new("/home/u/p")),
            "/srv/app"
        );
        assert_eq!(
            relative_to(Path::new("/home/u/pq"), Path::new("/home/u/p")),
            "/home/u/pq"
        );
        assert_eq!(
            relative_to(Path::new("/home/u/p/x/y"), Path::new("/home/u/p")),
            "x/y"
        );
    }
}
