//! Owns the double's in-memory rooms and participants and the state transitions LiveKit applies to them.

use std::collections::BTreeMap;

use livekit_protocol as proto;
use proto::participant_info::{Kind as ParticipantKind, State as ParticipantState};

use crate::ids;
use crate::webhook::events;

/// LiveKit's `room.empty_timeout` and `room.departure_timeout` defaults (config.go), which the
/// real server puts on every room a `CreateRoom` leaves unset.
const DEFAULT_EMPTY_TIMEOUT: u32 = 5 * 60;
const DEFAULT_DEPARTURE_TIMEOUT: u32 = 20;

#[derive(Debug)]
struct RoomEntry {
    room: proto::Room,
    /// In join order, so listings are stable across calls, unlike the real server's map order.
    participants: Vec<proto::ParticipantInfo>,
}

impl RoomEntry {
    fn snapshot(&self) -> proto::Room {
        let mut room = self.room.clone();
        room.num_participants = u32::try_from(self.participants.len()).unwrap_or(u32::MAX);
        room.num_publishers =
            u32::try_from(self.participants.iter().filter(|p| p.is_publisher).count()).unwrap_or(u32::MAX);
        room
    }

    fn participant_mut(&mut self, identity: &str) -> Option<&mut proto::ParticipantInfo> {
        self.participants.iter_mut().find(|p| p.identity == identity)
    }
}

/// What a state change produced: the value the caller asked for plus the webhooks LiveKit
/// would have fired because of it.
#[derive(Debug)]
pub(crate) struct Changed<T> {
    pub(crate) value: T,
    pub(crate) events: Vec<proto::WebhookEvent>,
}

impl<T> Changed<T> {
    fn quiet(value: T) -> Self {
        Self { value, events: Vec::new() }
    }
}

/// Why a lookup failed, worded as the real server words it so Twirp errors match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    Room,
    Participant,
}

impl Missing {
    pub(crate) fn message(self) -> &'static str {
        // The exact texts of ErrRoomNotFound / ErrParticipantNotFound in livekit-server.
        match self {
            Self::Room => "requested room does not exist",
            Self::Participant => "participant does not exist",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    rooms: BTreeMap<String, RoomEntry>,
}

impl Store {
    /// `CreateRoom` semantics: a new room gets LiveKit's defaults; an existing one is returned
    /// with only the non-zero request fields applied, as the room allocator does.
    pub(crate) fn create_room(&mut self, req: &proto::CreateRoomRequest) -> Changed<proto::Room> {
        let mut events = Vec::new();
        let entry = self.rooms.entry(req.name.clone()).or_insert_with(|| {
            let now_ms = ids::now_unix_ms();
            let room = proto::Room {
                sid: ids::guid("RM_"),
                name: req.name.clone(),
                empty_timeout: DEFAULT_EMPTY_TIMEOUT,
                departure_timeout: DEFAULT_DEPARTURE_TIMEOUT,
                creation_time: now_ms / 1000,
                creation_time_ms: now_ms,
                turn_password: ids::secret(),
                ..Default::default()
            };
            events.push(events::room_started(&room));
            RoomEntry { room, participants: Vec::new() }
        });
        if req.empty_timeout > 0 {
            entry.room.empty_timeout = req.empty_timeout;
        }
        if req.departure_timeout > 0 {
            entry.room.departure_timeout = req.departure_timeout;
        }
        if req.max_participants > 0 {
            entry.room.max_participants = req.max_participants;
        }
        if !req.metadata.is_empty() {
            entry.room.metadata.clone_from(&req.metadata);
        }
        Changed { value: entry.snapshot(), events }
    }

    pub(crate) fn list_rooms(&self, names: &[String]) -> Vec<proto::Room> {
        self.rooms
            .values()
            .filter(|e| names.is_empty() || names.contains(&e.room.name))
            .map(RoomEntry::snapshot)
            .collect()
    }

    pub(crate) fn room(&self, name: &str) -> Option<proto::Room> {
        self.rooms.get(name).map(RoomEntry::snapshot)
    }

    pub(crate) fn room_names(&self) -> Vec<String> {
        self.rooms.keys().cloned().collect()
    }

    /// Closing a room disconnects everyone in it first, which is the order LiveKit's webhooks
    /// arrive in: one `participant_left` per participant, then `room_finished`.
    pub(crate) fn delete_room(&mut self, name: &str) -> Option<Changed<proto::Room>> {
        let entry = self.rooms.remove(name)?;
        let room = entry.snapshot();
        let mut events: Vec<_> =
            entry.participants.iter().map(|p| events::participant_left(&room, &disconnected(p))).collect();
        let mut finished = room.clone();
        finished.num_participants = 0;
        finished.num_publishers = 0;
        events.push(events::room_finished(&finished));
        Some(Changed { value: room, events })
    }

    pub(crate) fn participants(&self, room: &str) -> Vec<proto::ParticipantInfo> {
        self.rooms.get(room).map(|e| e.participants.clone()).unwrap_or_default()
    }

    pub(crate) fn participant(&self, room: &str, identity: &str) -> Result<proto::ParticipantInfo, Missing> {
        let entry = self.rooms.get(room).ok_or(Missing::Participant)?;
        entry.participants.iter().find(|p| p.identity == identity).cloned().ok_or(Missing::Participant)
    }

    /// A participant "joins": LiveKit auto-creates the room on join, and a second join with the
    /// same identity replaces the first connection.
    pub(crate) fn add_participant(
        &mut self,
        room: &str,
        identity: &str,
        name: &str,
        metadata: &str,
        permission: Option<proto::ParticipantPermission>,
    ) -> Changed<proto::ParticipantInfo> {
        let mut events =
            self.create_room(&proto::CreateRoomRequest { name: room.to_owned(), ..Default::default() }).events;
        let Some(entry) = self.rooms.get_mut(room) else {
            return Changed::quiet(proto::ParticipantInfo::default());
        };
        if let Some(pos) = entry.participants.iter().position(|p| p.identity == identity) {
            let old = entry.participants.remove(pos);
            events.push(events::participant_left(&entry.snapshot(), &disconnected(&old)));
        }
        let now_ms = ids::now_unix_ms();
        let info = proto::ParticipantInfo {
            sid: ids::guid("PA_"),
            identity: identity.to_owned(),
            state: ParticipantState::Active as i32,
            metadata: metadata.to_owned(),
            joined_at: now_ms / 1000,
            joined_at_ms: now_ms,
            name: name.to_owned(),
            version: 1,
            permission: Some(permission.unwrap_or_else(default_join_permission)),
            kind: ParticipantKind::Standard as i32,
            ..Default::default()
        };
        entry.participants.push(info.clone());
        events.push(events::participant_joined(&entry.snapshot(), &info));
        Changed { value: info, events }
    }

    pub(crate) fn remove_participant(
        &mut self,
        room: &str,
        identity: &str,
    ) -> Result<Changed<proto::ParticipantInfo>, Missing> {
        let entry = self.rooms.get_mut(room).ok_or(Missing::Participant)?;
        let pos = entry.participants.iter().position(|p| p.identity == identity).ok_or(Missing::Participant)?;
        let removed = disconnected(&entry.participants.remove(pos));
        let events = vec![events::participant_left(&entry.snapshot(), &removed)];
        Ok(Changed { value: removed, events })
    }

    /// `UpdateParticipant` as RoomManager + ParticipantImpl apply it: empty name/metadata leave
    /// the old value, attributes merge (an empty value deletes the key), and a present
    /// `permission` replaces the whole permission, so any flag the caller left out becomes false.
    pub(crate) fn update_participant(
        &mut self,
        req: &proto::UpdateParticipantRequest,
    ) -> Result<Changed<proto::ParticipantInfo>, Missing> {
        let entry = self.rooms.get_mut(&req.room).ok_or(Missing::Participant)?;
        let room_snapshot = entry.snapshot();
        let participant = entry.participant_mut(&req.identity).ok_or(Missing::Participant)?;
        let mut events = Vec::new();
        if !req.name.is_empty() {
            participant.name.clone_from(&req.name);
        }
        if !req.metadata.is_empty() {
            participant.metadata.clone_from(&req.metadata);
        }
        for (key, value) in &req.attributes {
            if value.is_empty() {
                participant.attributes.remove(key);
            } else {
                participant.attributes.insert(key.clone(), value.clone());
            }
        }
        if let Some(permission) = &req.permission {
            participant.permission = Some(permission.clone());
            // Revoking publish rights unpublishes the offending tracks on the real server.
            let (kept, dropped): (Vec<_>, Vec<_>) = std::mem::take(&mut participant.tracks)
                .into_iter()
                .partition(|t| can_publish_source(permission, t.source));
            participant.tracks = kept;
            participant.is_publisher = !participant.tracks.is_empty();
            for track in &dropped {
                events.push(events::track_unpublished(&room_snapshot, participant, track));
            }
        }
        participant.version += 1;
        Ok(Changed { value: participant.clone(), events })
    }

    pub(crate) fn update_room_metadata(&mut self, room: &str, metadata: &str) -> Result<proto::Room, Missing> {
        let entry = self.rooms.get_mut(room).ok_or(Missing::Room)?;
        metadata.clone_into(&mut entry.room.metadata);
        Ok(entry.snapshot())
    }

    pub(crate) fn add_track(
        &mut self,
        room: &str,
        identity: &str,
        track: proto::TrackInfo,
    ) -> Result<Changed<proto::TrackInfo>, Missing> {
        let entry = self.rooms.get_mut(room).ok_or(Missing::Room)?;
        let room_snapshot = entry.snapshot();
        let participant = entry.participant_mut(identity).ok_or(Missing::Participant)?;
        let mut track = track;
        if track.sid.is_empty() {
            track.sid = ids::guid("TR_");
        }
        participant.tracks.push(track.clone());
        participant.is_publisher = true;
        participant.version += 1;
        let event = events::track_published(&room_snapshot, participant, &track);
        Ok(Changed { value: track, events: vec![event] })
    }

    /// The room lookup happens before the participant lookup, as in RoomManager, so the two
    /// failures carry different messages.
    pub(crate) fn mute_track(
        &mut self,
        req: &proto::MuteRoomTrackRequest,
    ) -> Result<Option<proto::TrackInfo>, Missing> {
        let entry = self.rooms.get_mut(&req.room).ok_or(Missing::Room)?;
        let participant = entry.participant_mut(&req.identity).ok_or(Missing::Participant)?;
        let track = participant.tracks.iter_mut().find(|t| t.sid == req.track_sid);
        Ok(track.map(|t| {
            t.muted = req.muted;
            t.clone()
        }))
    }

    pub(crate) fn room_exists(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    pub(crate) fn participant_exists(&self, room: &str, identity: &str) -> bool {
        self.participant(room, identity).is_ok()
    }

    pub(crate) fn clear(&mut self) {
        self.rooms.clear();
    }
}

/// The permission a token with only `roomJoin` yields: LiveKit's grant getters default
/// `canPublish` and `canSubscribe` to true and `canPublishData` to `canPublish`.
pub fn default_join_permission() -> proto::ParticipantPermission {
    proto::ParticipantPermission {
        can_subscribe: true,
        can_publish: true,
        can_publish_data: true,
        ..Default::default()
    }
}

/// `VideoGrant.GetCanPublishSource`: no publishing at all without `canPublish`, and an empty
/// source list means every source.
fn can_publish_source(permission: &proto::ParticipantPermission, source: i32) -> bool {
    permission.can_publish
        && (permission.can_publish_sources.is_empty() || permission.can_publish_sources.contains(&source))
}

fn disconnected(p: &proto::ParticipantInfo) -> proto::ParticipantInfo {
    let mut p = p.clone();
    p.state = ParticipantState::Disconnected as i32;
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_update_replaces_the_whole_message() {
        let mut store = Store::default();
        store.add_participant("r", "alice", "Alice", "", None);
        let changed = store
            .update_participant(&proto::UpdateParticipantRequest {
                room: "r".into(),
                identity: "alice".into(),
                permission: Some(proto::ParticipantPermission { can_subscribe: true, ..Default::default() }),
                ..Default::default()
            })
            .unwrap();
        let permission = changed.value.permission.unwrap();
        assert!(permission.can_subscribe);
        assert!(!permission.can_publish);
        assert!(!permission.can_publish_data);
    }

    #[test]
    fn revoking_publish_drops_tracks() {
        let mut store = Store::default();
        store.add_participant("r", "alice", "Alice", "", None);
        store
            .add_track(
                "r",
                "alice",
                proto::TrackInfo { source: proto::TrackSource::Camera as i32, ..Default::default() },
            )
            .unwrap();
        let changed = store
            .update_participant(&proto::UpdateParticipantRequest {
                room: "r".into(),
                identity: "alice".into(),
                permission: Some(proto::ParticipantPermission {
                    can_publish: true,
                    can_publish_sources: vec![proto::TrackSource::Microphone as i32],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .unwrap();
        assert!(changed.value.tracks.is_empty());
        assert_eq!(changed.events[0].event, "track_unpublished");
    }

    #[test]
    fn delete_room_emits_left_then_finished() {
        let mut store = Store::default();
        store.add_participant("r", "alice", "Alice", "", None);
        let changed = store.delete_room("r").unwrap();
        let names: Vec<_> = changed.events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(names, ["participant_left", "room_finished"]);
        assert!(store.participants("r").is_empty());
    }
}
