//! Hardening tests: names.
