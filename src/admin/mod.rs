//! Instance-wide administration behind `/api/admin/*` and `confctl admin monitor`: API tokens, the admin
//! event feed (with a bounded replay buffer), and the rooms snapshot with live counts.

pub mod bans;
pub mod feed;
pub mod snapshot;
pub mod tokens;
