//! Instance-wide administration behind `/api/admin/*` and `confctl admin monitor`: API tokens, the admin
//! event feed (with a bounded replay buffer), the rooms snapshot with live counts, and the global AI settings.

pub mod ai_settings;
pub mod bans;
pub mod feed;
pub mod snapshot;
pub mod tokens;
