//! The two platform generations we can imitate, and how the default is picked.

use crate::manifest::Manifest;

/// Stackato 2.x (CF v1, LXC, `/app`) or 3.x (CF v2, Docker, `/home/stackato`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Profile {
    V2,
    V3,
}

impl Profile {
    pub fn number(self) -> u8 {
        match self {
            Profile::V2 => 2,
            Profile::V3 => 3,
        }
    }

    pub(crate) fn from_number(n: &str) -> Option<Profile> {
        match n.trim() {
            "2" | "2.x" | "v2" => Some(Profile::V2),
            "3" | "3.x" | "v3" => Some(Profile::V3),
            _ => None,
        }
    }
}

/// Why a profile was chosen, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub profile: Profile,
    pub reason: String,
}

/// What a manifest says about the platform it was written for: the profile rule's input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Evidence {
    /// Signs of the 3.x format: an `applications:` list, a `stackato:` sub-mapping,
    /// `buildpack:`, a Procfile.
    pub v3_signs: Vec<String>,
    /// The first `min_version` that asks for the 2.x era (`client` below 2, `server` below 3),
    /// as a reason.
    pub old_min_version: Option<String>,
}

/// The profile rule: a 3.x-format manifest gets 3 whatever `min_version` says (3.x apps kept
/// their old `min_version: client: 1.x` line); otherwise a `min_version` of the 2.x era gives
/// 2; otherwise 3, the newest. `--profile` overrides all of it (the caller's business).
pub(crate) fn rule(e: &Evidence) -> Choice {
    if let Some(sign) = e.v3_signs.first() {
        let reason = match &e.old_min_version {
            Some(mv) => format!("{sign}; a 3.x-format manifest, whatever its {mv} says"),
            None => format!("{sign}: a 3.x-format manifest"),
        };
        return Choice {
            profile: Profile::V3,
            reason,
        };
    }
    if let Some(mv) = &e.old_min_version {
        return Choice {
            profile: Profile::V2,
            reason: mv.clone(),
        };
    }
    Choice {
        profile: Profile::V3,
        reason: "the newest platform (no min_version says otherwise)".into(),
    }
}

/// The evidence in a loaded manifest: its shape's signs, each app's `buildpack:` and Procfile
/// (a regular file, not a link), and the first 2.x-era `min_version`.
pub(crate) fn evidence(manifest: &Manifest) -> Evidence {
    let mut e = Evidence {
        v3_signs: manifest.v3_signs.clone(),
        old_min_version: None,
    };
    for app in &manifest.apps {
        if app.buildpack.is_some() {
            e.v3_signs
                .push(format!("`buildpack:` in {}", app.name.value));
        }
        if std::fs::symlink_metadata(app.path.join("Procfile")).is_ok_and(|m| m.is_file()) {
            e.v3_signs
                .push(format!("{} has a Procfile", app.name.value));
        }
        if e.old_min_version.is_some() {
            continue;
        }
        if let Some(c) = &app.min_version.client
            && major(&c.value).is_some_and(|m| m < 2)
        {
            e.old_min_version = Some(format!(
                "min_version: client {} (a 1.x client talks to Stackato 2.x)",
                c.value
            ));
        } else if let Some(s) = &app.min_version.server
            && major(&s.value).is_some_and(|m| m < 3)
        {
            e.old_min_version = Some(format!("min_version: server {}", s.value));
        }
    }
    e
}

/// The default profile for a manifest: [`rule`] applied to its [`evidence`].
pub fn default_for(manifest: &Manifest) -> Choice {
    rule(&evidence(manifest))
}

fn major(v: &str) -> Option<u64> {
    v.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(signs: &[&str], mv: Option<&str>) -> Evidence {
        Evidence {
            v3_signs: signs.iter().map(|s| s.to_string()).collect(),
            old_min_version: mv.map(str::to_string),
        }
    }

    #[test]
    fn nothing_said_is_the_newest() {
        assert_eq!(rule(&ev(&[], None)).profile, Profile::V3);
    }

    #[test]
    fn an_old_min_version_alone_is_2() {
        let c = rule(&ev(&[], Some("min_version: client 1.4.3")));
        assert_eq!(c.profile, Profile::V2);
        assert!(c.reason.contains("1.4.3"), "{}", c.reason);
    }

    #[test]
    fn a_3x_sign_wins_over_an_old_min_version() {
        let c = rule(&ev(
            &["`applications:` is a list", "app has a Procfile"],
            Some("min_version: client 1.4.3"),
        ));
        assert_eq!(c.profile, Profile::V3);
        assert!(
            c.reason.contains("`applications:` is a list"),
            "{}",
            c.reason
        );
        assert!(
            c.reason.contains("min_version: client 1.4.3"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn a_3x_sign_alone_is_3_with_its_reason() {
        let c = rule(&ev(&["`buildpack:` in web"], None));
        assert_eq!(c.profile, Profile::V3);
        assert!(c.reason.contains("buildpack"), "{}", c.reason);
    }

    /// The manifest and its directory (kept while the test reads the Procfile).
    fn loaded(yml: &str, file: &str, extra: &[(&str, &str)]) -> (tempfile::TempDir, Manifest) {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join(file), yml).expect("write");
        for (n, t) in extra {
            std::fs::write(d.path().join(n), t).expect("write");
        }
        let opts = crate::manifest::LoadOptions::new(d.path());
        let mut ask = |_: &str| None;
        let m = crate::manifest::load(&opts, &mut ask)
            .expect("loads")
            .manifest;
        (d, m)
    }

    #[test]
    fn the_shapes_of_a_manifest_are_read_as_evidence() {
        let old = "min_version:\n  client: 1.4.3\n";
        // stackato.yml with an old min_version: 2.
        let (_d, m) = loaded(&format!("name: a\n{old}"), "stackato.yml", &[]);
        assert_eq!(default_for(&m).profile, Profile::V2);
        // A path-keyed applications: mapping is the 2.x form: still 2.
        let (_d, m) = loaded(
            &format!(
                "applications:\n  .:\n    name: a\n    {}",
                old.replace("\n  ", "\n      ")
            ),
            "manifest.yml",
            &[],
        );
        assert_eq!(default_for(&m).profile, Profile::V2, "{:?}", evidence(&m));
        // An applications: list with a stackato: sub-mapping: 3.
        let (_d, m) = loaded(
            "applications:\n- name: a\n  stackato:\n    min_version:\n      client: 1.4.3\n",
            "manifest.yml",
            &[],
        );
        let e = evidence(&m);
        assert_eq!(e.v3_signs.len(), 2, "{e:?}");
        assert!(e.old_min_version.is_some(), "{e:?}");
        assert_eq!(default_for(&m).profile, Profile::V3);
        // buildpack: 3.
        let (_d, m) = loaded(
            &format!("name: a\nbuildpack: https://example.com/bp.git\n{old}"),
            "stackato.yml",
            &[],
        );
        assert_eq!(default_for(&m).profile, Profile::V3);
        // A Procfile: 3.
        let (_d, m) = loaded(
            &format!("name: a\n{old}"),
            "stackato.yml",
            &[("Procfile", "web: python app.py\n")],
        );
        assert_eq!(default_for(&m).profile, Profile::V3);
    }
}
