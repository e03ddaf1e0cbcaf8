//! The project's provisioned service instances (`.stackato-local/services.json`): one record
//! per service name with its type, remembered port and credentials, generated once with the
//! OS's random generator and reused on every later run, so the environment is stable.

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, Span};
use crate::manifest::Manifest;
use crate::platform::layout::Layout;
use crate::platform::services as shapes;
use crate::random::Rng;
use crate::services::ports;
use crate::state::{StateDir, StateError};
use serde::{Deserialize, Serialize};

pub(crate) const FILE: &str = "services.json";

pub(crate) use crate::model::ServiceRecord;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Registry {
    #[serde(default)]
    pub services: BTreeMap<String, ServiceRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{}", .0.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "))]
    Conflict(Vec<Diagnostic>),
    #[error("cannot find a free port on 127.0.0.1: {0}")]
    Port(std::io::Error),
    #[error(transparent)]
    Random(#[from] crate::random::RandomError),
}

/// A service the manifest asks for, merged across applications.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    pub name: String,
    pub kind: String,
    pub span: Span,
    pub user_credentials: Vec<(String, String)>,
}

/// Every service the manifest's apps ask for, by name; a name used by several apps is one
/// instance (as on the platform). Conflicting types, and CF v2 list entries that no app gives
/// a type, are errors.
pub(crate) fn wanted(
    manifest: &Manifest,
    existing: &Registry,
) -> Result<Vec<Wanted>, Vec<Diagnostic>> {
    let mut out: Vec<Wanted> = Vec::new();
    let mut diags = Vec::new();
    for app in &manifest.apps {
        for s in &app.services {
            let Some(kind) = &s.kind else { continue };
            match out.iter().find(|w| w.name == s.name.value) {
                Some(w) if w.kind != kind.value => diags.push(
                    Diagnostic::error(format!(
                        "The application's request for a {} service \"{}\" conflicts with a {} service of the same name",
                        kind.value, s.name.value, w.kind
                    ))
                    .at(kind.span)
                    .related("first requested here", w.span),
                ),
                Some(_) => {}
                None => out.push(Wanted {
                    name: s.name.value.clone(),
                    kind: kind.value.clone(),
                    span: s.name.span,
                    user_credentials: s.credentials.clone(),
                }),
            }
        }
    }
    for app in &manifest.apps {
        for s in app.services.iter().filter(|s| s.kind.is_none()) {
            if out.iter().any(|w| w.name == s.name.value) {
                continue;
            }
            match existing.services.get(&s.name.value) {
                Some(r) => out.push(Wanted {
                    name: r.name.clone(),
                    kind: r.kind.clone(),
                    span: s.name.span,
                    user_credentials: Vec::new(),
                }),
                None => diags.push(
                    Diagnostic::error(format!(
                        "Service \"{}\" is only named (the list form binds an existing service), and nothing says its type",
                        s.name.value
                    ))
                    .at(s.name.span)
                    .hint(format!("declare it: `services: {{{}: mysql}}` (or its real type)", s.name.value)),
                ),
            }
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// Load the registry, add records for services the manifest asks for that are new, and
/// save it. Existing records are reused untouched; a type change is an error (as the
/// platform's "conflicts with a … service of the same name").
pub fn provision(
    state: &StateDir,
    manifest: &Manifest,
    rng: &mut dyn Rng,
) -> Result<Vec<ServiceRecord>, ProvisionError> {
    let _lock = state.lock("services")?;
    let mut reg: Registry = state.read_json(FILE)?.unwrap_or_default();
    let wanted = wanted(manifest, &reg).map_err(ProvisionError::Conflict)?;
    let mut changed = false;
    let mut out = Vec::new();
    let mut conflicts = Vec::new();
    for w in &wanted {
        if let Some(r) = reg.services.get_mut(&w.name) {
            if r.kind != w.kind {
                conflicts.push(
                    Diagnostic::error(format!(
                        "Service \"{}\" was created here as {}, but stackato.yml now asks for {}",
                        w.name, r.kind, w.kind
                    ))
                    .at(w.span)
                    .hint(format!(
                        "delete the old one and its data with `stackato-local services reset {}`, or rename the service",
                        w.name
                    )),
                );
                continue;
            }
            if w.kind == "user-provided" {
                let fresh = shapes::generate(&w.kind, None, None, &w.user_credentials, rng)?;
                if fresh != r.credentials {
                    r.credentials = fresh;
                    changed = true;
                }
            }
            if w.kind == "filesystem" {
                // The directory is always the service's own in the state dir, whatever an
                // older version or the project's copy of this file says.
                let dir = serde_json::json!(
                    Layout::filesystem_dir(state.root(), &w.name)
                        .display()
                        .to_string()
                );
                if r.credentials.get("dir") != Some(&dir) {
                    r.credentials.insert("dir".into(), dir);
                    changed = true;
                }
            }
            out.push(r.clone());
            continue;
        }
        let port = if shapes::has_port(&w.kind) {
            Some(ports::free_port().map_err(ProvisionError::Port)?)
        } else {
            None
        };
        let dir = (w.kind == "filesystem").then(|| {
            Layout::filesystem_dir(state.root(), &w.name)
                .display()
                .to_string()
        });
        let record = ServiceRecord {
            name: w.name.clone(),
            kind: w.kind.clone(),
            port,
            credentials: shapes::generate(&w.kind, port, dir.as_deref(), &w.user_credentials, rng)?,
        };
        reg.services.insert(w.name.clone(), record.clone());
        changed = true;
        out.push(record);
    }
    if !conflicts.is_empty() {
        return Err(ProvisionError::Conflict(conflicts));
    }
    if changed {
        state.write_json(FILE, &reg)?;
    }
    Ok(out)
}

/// Read the registry without changing it.
pub(crate) fn load(state: &StateDir) -> Result<Registry, StateError> {
    Ok(state.read_json(FILE)?.unwrap_or_default())
}
