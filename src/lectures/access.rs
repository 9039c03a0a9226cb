//! Who may read a lecture, and the record of every read by someone other than its host.
//!
//! The host and admins always; a guest admitted to that very lecture when the room allows it (proved by the
//! guest session of that lecture); anyone holding a live share link. Everyone else gets the same 404 as for
//! a lecture that does not exist, so a lecture id reveals nothing.

use crate::accounts::AuthUser;
use crate::app::App;
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::ids;
use crate::store::{Admission, LectureRecord, ParticipantRecord, RoomRecord, ShareRecord};

/// What a caller presents: a signed-in account, a guest session, a share-link token (any or none).
#[derive(Debug, Default)]
pub struct Credentials<'a> {
    pub auth: Option<AuthUser>,
    pub guest_session: Option<&'a str>,
    pub share_token: Option<&'a str>,
    pub ip: Option<String>,
}

/// Who is reading, once let in.
#[derive(Debug, Clone)]
pub enum Reader {
    /// The room's host, or an admin.
    Host(AuthUser),
    /// A guest who was admitted to this lecture.
    Participant(Box<ParticipantRecord>),
    /// Someone with a share link: read-only, no attendance.
    Share(Box<ShareRecord>),
    /// An administrator on the server itself (`confctl export`): everything, attendance included.
    Operator(Actor),
}

impl Reader {
    /// Host or admin: may edit the summary, regenerate it, share.
    pub fn is_host(&self) -> bool {
        matches!(self, Self::Host(_))
    }

    /// Hosts, admins and the operator's export see who attended.
    pub fn sees_attendance(&self) -> bool {
        matches!(self, Self::Host(_) | Self::Operator(_))
    }

    /// `host`, `admin`, `participant` or `share`.
    pub fn role(&self, room: &RoomRecord) -> &'static str {
        match self {
            Self::Host(auth) if auth.user.id == room.host_id => "host",
            Self::Host(_) => "admin",
            Self::Participant(_) => "participant",
            Self::Share(_) => "share",
            Self::Operator(_) => "operator",
        }
    }

    pub fn actor(&self, ip: Option<String>) -> Actor {
        match self {
            Self::Host(auth) => auth.user.actor(ip),
            Self::Participant(p) => Actor { user_id: None, label: format!("guest:{}", p.display_name), ip },
            Self::Share(s) => Actor { user_id: None, label: format!("share:{}", s.id), ip },
            Self::Operator(actor) => actor.clone(),
        }
    }
}

/// A lecture someone may read, with its room (as it is now) and who reads it.
#[derive(Debug, Clone)]
pub struct Opened {
    pub lecture: LectureRecord,
    pub room: RoomRecord,
    pub reader: Reader,
    /// For the audit entry of this read.
    pub ip: Option<String>,
}

impl Opened {
    /// Hosts and admins only (edits, regeneration, share links, attendance): others get the lecture's 404.
    pub fn require_host(&self) -> Result<&AuthUser> {
        match &self.reader {
            Reader::Host(auth) => Ok(auth),
            _ => Err(not_found()),
        }
    }

    pub fn actor(&self) -> Actor {
        self.reader.actor(self.ip.clone())
    }

    /// Records a read by anyone other than the room's host (admins included): `what` names the view or
    /// download.
    pub async fn audit_read(&self, app: &App, what: &str) {
        if self.reader.role(&self.room) == "host" {
            return;
        }
        audit::record(
            app,
            &self.actor(),
            "lecture.read",
            Some(("lecture", &self.lecture.id)),
            Some(&self.room.id),
            serde_json::json!({ "via": self.reader.role(&self.room), "what": what }),
        )
        .await;
    }
}

pub fn not_found() -> Error {
    Error::not_found("lecture_not_found", "no such lecture")
}

/// Opens a lecture for an administrator on the server (`confctl export`), who reads every lecture.
pub async fn open_as_operator(app: &App, lecture_id: &str, actor: Actor) -> Result<Opened> {
    let lecture = match app.store().lecture_by_id(lecture_id).await {
        Ok(l) => l,
        Err(Error::NotFound { .. }) => return Err(not_found()),
        Err(err) => return Err(err),
    };
    let room = app.store().room_by_id(&lecture.room_id).await?;
    Ok(Opened { lecture, room, reader: Reader::Operator(actor), ip: None })
}

/// Opens a lecture for whoever `credentials` prove to be, or answers 404.
pub async fn open(app: &App, lecture_id: &str, credentials: Credentials<'_>) -> Result<Opened> {
    let lecture = match app.store().lecture_by_id(lecture_id).await {
        Ok(l) => l,
        Err(Error::NotFound { .. }) => return Err(not_found()),
        Err(err) => return Err(err),
    };
    let room = app.store().room_by_id(&lecture.room_id).await?;
    let ip = credentials.ip.clone();
    let reader = reader(app, &lecture, &room, credentials).await?.ok_or_else(not_found)?;
    Ok(Opened { lecture, room, reader, ip })
}

async fn reader(
    app: &App,
    lecture: &LectureRecord,
    room: &RoomRecord,
    credentials: Credentials<'_>,
) -> Result<Option<Reader>> {
    if let Some(auth) = credentials.auth {
        if auth.user.id == room.host_id || auth.user.is_admin() {
            return Ok(Some(Reader::Host(auth)));
        }
    }
    if let Some(session) = credentials.guest_session.filter(|s| !s.is_empty() && s.len() <= 100) {
        if room.lectures_for_participants {
            if let Some(p) = app.store().participant_by_session(&ids::session_hash(session)).await? {
                if admitted_to(app, &p, lecture, room).await? {
                    return Ok(Some(Reader::Participant(Box::new(p))));
                }
            }
        }
    }
    if let Some(token) = credentials.share_token.filter(|t| !t.is_empty() && t.len() <= 100) {
        if let Some(share) = app.store().share_by_hash(&ids::secret_hash(token)).await? {
            let now = app.clock().now_ms();
            if share.lecture_id == lecture.id && share.revoked_at.is_none() && share.expires_at > now {
                app.store().touch_share(&share.id, now).await?;
                return Ok(Some(Reader::Share(Box::new(share))));
            }
        }
    }
    Ok(None)
}

/// A guest session proves attendance of one lecture: admitted to it, not removed from it, not banned since.
async fn admitted_to(app: &App, p: &ParticipantRecord, lecture: &LectureRecord, room: &RoomRecord) -> Result<bool> {
    if p.lecture_id != lecture.id || p.admission != Admission::Approved || p.removed_at.is_some() {
        return Ok(false);
    }
    let Some(fingerprint) = &p.fingerprint else { return Ok(false) };
    Ok(!app.store().is_banned(&room.id, &room.host_id, fingerprint, p.session_hash.as_deref()).await?)
}
