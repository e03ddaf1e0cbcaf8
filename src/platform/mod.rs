//! The platform's rules as pure functions: profiles, the local path mapping, service labels
//! and credential shapes, default web commands, and the staging and runtime environments.

pub mod detect;
pub mod env;
pub mod layout;
pub mod node_range;
pub mod perl;
pub mod php_apache;
pub mod php_ext;
pub mod php_htaccess;
pub mod profile;
pub mod runtime;
pub mod runtime_bin;
pub mod services;
pub mod web;

pub use profile::Profile;
