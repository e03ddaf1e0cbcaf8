//! Hardening tests: state.
