//! The plan of a run: which apps, in which order, how many instances each, the environment
//! requests of their staging and of each instance, and who waits for whom.

use crate::env::build::Request;
use crate::manifest::{App, Loaded};
use crate::plan::{EnvOptions, PlanError};

/// One app of the plan.
#[derive(Debug)]
pub(crate) struct AppPlan<'a> {
    pub app: &'a App,
    /// The environment request of its staging.
    pub staging: Request,
    /// One environment request per instance, numbered from 0.
    pub instances: Vec<Request>,
}

/// The apps of a run, in start order.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    pub apps: Vec<AppPlan<'a>>,
    /// For each app, the positions in `apps` of the apps it depends on (and only those).
    pub deps: Vec<Vec<usize>>,
    /// The manifest has several apps: process names carry the app's name.
    pub multi: bool,
}

/// Every name of `--app` is an app of the manifest.
pub(crate) fn check_selection(loaded: &Loaded, names: &[String]) -> Result<(), PlanError> {
    for name in names {
        if loaded.manifest.app(name).is_none() {
            let known: Vec<&str> = loaded
                .manifest
                .apps
                .iter()
                .map(|a| a.name.value.as_str())
                .collect();
            return Err(PlanError::NoSuchApp {
                name: name.clone(),
                known: known.join(", "),
            });
        }
    }
    Ok(())
}

impl<'a> Plan<'a> {
    /// The apps named in `names` (all when empty; unknown names are left out, see
    /// [`check_selection`]) in start order (`depends-on` first), with their requests.
    pub(crate) fn new(loaded: &'a Loaded, names: &[String], opts: &EnvOptions) -> Plan<'a> {
        let selected: Vec<&App> = loaded
            .manifest
            .start_order()
            .into_iter()
            .filter(|a| names.is_empty() || names.contains(&a.name.value))
            .collect();
        let deps = selected
            .iter()
            .map(|a| {
                a.depends_on
                    .iter()
                    .filter_map(|d| selected.iter().position(|x| x.name.value == d.value))
                    .collect()
            })
            .collect();
        let apps = selected
            .into_iter()
            .map(|app| {
                let name = Some(app.name.value.as_str());
                AppPlan {
                    app,
                    staging: opts.request(name, 0, true),
                    instances: (0..app.instance_count())
                        .map(|i| opts.request(name, i, false))
                        .collect(),
                }
            })
            .collect();
        Plan {
            apps,
            deps,
            multi: loaded.manifest.apps.len() > 1,
        }
    }
}

impl AppPlan<'_> {
    /// The name of one of its processes: `kind`, or `<app>:kind` with several apps.
    pub(crate) fn label(&self, multi: bool, kind: &str) -> String {
        if multi {
            format!("{}:{kind}", self.app.name.value)
        } else {
            kind.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(yml: &str) -> (tempfile::TempDir, Loaded) {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("stackato.yml"), yml).expect("write");
        let opts = crate::manifest::LoadOptions::new(d.path());
        let mut ask = |_: &str| None;
        let l = crate::manifest::load(&opts, &mut ask).expect("loads");
        (d, l)
    }

    const TWO: &str = "applications:\n  web:\n    name: web\n    depends-on: api\n    instances: 2\n  api:\n    name: api\n";

    #[test]
    fn apps_in_start_order_with_their_instances_and_edges() {
        let (_d, l) = loaded(TWO);
        let p = Plan::new(&l, &[], &EnvOptions::default());
        let names: Vec<&str> = p.apps.iter().map(|a| a.app.name.value.as_str()).collect();
        assert_eq!(names, ["api", "web"]);
        assert_eq!(p.deps, vec![vec![], vec![0]]);
        assert!(p.multi);
        let web = &p.apps[1];
        assert!(web.staging.staging);
        assert_eq!(web.staging.app.as_deref(), Some("web"));
        let inst: Vec<(u32, bool)> = web
            .instances
            .iter()
            .map(|r| (r.instance, r.staging))
            .collect();
        assert_eq!(inst, [(0, false), (1, false)]);
        assert_eq!(web.label(p.multi, "web.1"), "web:web.1");
    }

    #[test]
    fn a_selection_keeps_only_its_apps_and_their_edges_among_them() {
        let (_d, l) = loaded(TWO);
        let p = Plan::new(&l, &["web".to_string()], &EnvOptions::default());
        assert_eq!(p.apps.len(), 1);
        assert_eq!(p.deps, vec![Vec::<usize>::new()]);
        assert!(check_selection(&l, &["web".to_string()]).is_ok());
        let e = check_selection(&l, &["nope".to_string()]).expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "no application named \"nope\" (the manifest has: web, api)"
        );
    }
}
