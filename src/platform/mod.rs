//! The platform's rules as pure functions: profiles, the local path mapping, service labels
//! and credential shapes, default web commands, and the staging and runtime environments.

pub(crate) mod detect;
pub(crate) mod env;
pub(crate) mod layout;
pub(crate) mod node_range;
pub(crate) mod perl;
pub(crate) mod php_apache;
pub(crate) mod php_ext;
pub(crate) mod php_htaccess;
pub(crate) mod profile;
pub(crate) mod routes;
pub(crate) mod runtime;
pub(crate) mod runtime_bin;
pub(crate) mod services;
pub(crate) mod web;

pub use profile::Profile;
