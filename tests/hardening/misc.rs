//! Hardening tests: misc.
