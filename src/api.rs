//! What the fuzz targets (`fuzz/`), the benches (`benches/`) and the integration tests
//! (`tests/`) reach inside the library, re-exported under the paths the crate uses (so
//! `crate::env::dotenv::parse` is `stackato_local::api::env::dotenv::parse`). It exists for them
//! only and is not a stable API: everything else is `pub(crate)`, so the compiler reports dead
//! code. Add an item here only when one of them needs it.

pub use crate::cli::run_with_args;

pub mod diag {
    pub use crate::diag::{FileId, Sources};
}

pub mod env {
    pub mod diff {
        pub use crate::env::diff::{Item, Kind, diff};
    }
    pub mod dotenv {
        pub use crate::env::dotenv::parse;
    }
    pub mod dump {
        pub use crate::env::dump::parse;
    }
    pub mod mask {
        pub use crate::env::mask::{MASK, Secrets, is_secret_name, url_password};
    }
    pub mod user {
        pub use crate::env::user::{Input, apply, expand, parse_cli_pair};
    }
}

pub mod manifest {
    pub use crate::manifest::model::App;
    pub use crate::manifest::{LoadError, LoadOptions, Loaded, load, load_bytes};
    pub mod model {
        pub use crate::manifest::model::EnvVar;
    }
    pub mod validate {
        pub use crate::manifest::validate::is_env_name;
    }
}

pub mod model {
    pub use crate::model::ServiceRecord;
    pub use crate::model::env_set::{EnvSet, Layer};
}

pub mod platform {
    pub use crate::platform::Profile;
    pub mod env {
        pub use crate::platform::env::{Binding, DbUrlRule, Facts, Input, SqliteEnv, runtime};
    }
    pub mod layout {
        pub use crate::platform::layout::Layout;
    }
    pub mod profile {
        pub use crate::platform::profile::default_for;
    }
    pub mod services {
        pub use crate::platform::services::generate;
    }
}

pub mod process {
    pub use crate::process::set_spawn_hook;
}

pub mod random {
    pub use crate::random::{OsRng, SeededRng};
}

pub mod services {
    pub use crate::services::for_kind;
    pub mod backend {
        pub use crate::services::backend::find;
    }
    pub mod http {
        pub use crate::services::http::request;
    }
    pub mod lifecycle {
        pub use crate::services::lifecycle::{
            DbMode, Mode, Planned, StartOptions, paths_for, plan, start_all, stop,
        };
    }
    pub mod paths {
        pub use crate::services::paths::RunAs;
    }
    pub mod registry {
        pub use crate::services::registry::provision;
    }
}

pub mod shell {
    pub use crate::shell::{Dialect, Unsafe, assign, is_name, safe_name};
}

pub mod stage {
    pub mod copy {
        pub use crate::stage::copy::{Changes, Source, clone_tree, diff, populate, sync};
    }
    pub mod glob {
        pub use crate::stage::glob::Glob;
    }
    pub mod ignores {
        pub use crate::stage::ignores::Ignores;
    }
}

pub mod state {
    pub use crate::state::StateDir;
}

pub mod yaml {
    pub use crate::yaml::{Node, Style, Value, parse};
}
