//! One module per subcommand.

pub mod event;
pub mod filter;
pub mod send;
