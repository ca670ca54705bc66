//! The CloudEvents event model (placeholder).
