//! One module per subcommand.

pub mod build;
pub mod compose;
pub mod discover;
pub mod dlq;
pub mod event;
pub mod events;
pub mod filter;
pub mod new;
pub mod registry;
pub mod send;
pub mod sub;
pub mod up;
