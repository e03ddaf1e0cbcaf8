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

    pub fn from_number(n: &str) -> Option<Profile> {
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

/// The default profile for a manifest: 2 when it says it was written for the 2.x era
/// (`min_version: client` below 2, or `server` below 3), else 3.
pub fn default_for(manifest: &Manifest) -> Choice {
    for app in &manifest.apps {
        if let Some(c) = &app.min_version.client
            && major(&c.value).is_some_and(|m| m < 2)
        {
            return Choice {
                profile: Profile::V2,
                reason: format!(
                    "min_version: client {} (a 1.x client talks to Stackato 2.x)",
                    c.value
                ),
            };
        }
        if let Some(s) = &app.min_version.server
            && major(&s.value).is_some_and(|m| m < 3)
        {
            return Choice {
                profile: Profile::V2,
                reason: format!("min_version: server {}", s.value),
            };
        }
    }
    Choice {
        profile: Profile::V3,
        reason: "the newest platform (no min_version says otherwise)".into(),
    }
}

fn major(v: &str) -> Option<u64> {
    v.split('.').next()?.parse().ok()
}
