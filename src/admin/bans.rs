//! Bans across the instance for administrators: list them (all, or those that apply to one room) and lift
//! one by id, through the same moderation function and audit entry as the host's "unban".

use crate::app::App;
use crate::audit::Actor;
use crate::error::{Error, Result};
use crate::moderation;
use crate::store::BanRecord;

use super::snapshot::find_room;

/// Every ban, or the bans that apply to `room_id` (its own and its host's all-rooms bans).
pub async fn list(app: &App, room_id: Option<&str>) -> Result<Vec<BanRecord>> {
    match room_id {
        Some(id) => moderation::bans(app, &find_room(app, id).await?).await,
        None => app.store().all_bans().await,
    }
}

/// Lifts a ban by id (404 `ban_not_found` for an unknown one).
pub async fn lift(app: &App, actor: &Actor, ban_id: &str) -> Result<BanRecord> {
    let not_found = || Error::not_found("ban_not_found", format!("no ban with id {ban_id}"));
    let ban = app.store().ban_by_id(ban_id).await?.ok_or_else(not_found)?;
    let room = match &ban.room_id {
        Some(id) => find_room(app, id).await?,
        // A ban across all of a host's rooms is lifted through any of them.
        None => app.store().list_rooms(Some(&ban.host_id)).await?.into_iter().next().ok_or_else(not_found)?,
    };
    moderation::unban(app, &room, ban_id, actor).await?;
    Ok(ban)
}
