//! One module per subcommand.

pub mod dlq;
pub mod event;
pub mod send;
pub mod sub;
