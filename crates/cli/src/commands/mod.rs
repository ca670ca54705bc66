//! One module per subcommand.

pub mod event;
pub mod send;
