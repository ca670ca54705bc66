//! One module per subcommand.

pub mod build;
pub mod event;
pub mod filter;
pub mod new;
pub mod send;
pub mod up;
