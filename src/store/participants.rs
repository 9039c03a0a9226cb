//! Queries on `participants`: guest sessions with their lobby state, hosts, and join/leave history.

use super::{DbResult, MaybeFlag, RoomRecord, Statement, Store, UnknownValue};
use crate::error::{Error, Result};

/// Where a person stands at the door of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Admission {
    Pending,
    Approved,
    Rejected,
}

impl Admission {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(Self::Pending),
            "APPROVED" => Some(Self::Approved),
            "REJECTED" => Some(Self::Rejected),
            _ => None,
        }
    }
}

impl TryFrom<String> for Admission {
    type Error = UnknownValue;
    fn try_from(text: String) -> std::result::Result<Self, UnknownValue> {
        Self::parse(&text).ok_or_else(|| UnknownValue::new("admission", text))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantKind {
    Guest,
    Host,
}

/// `HOST`, and anything else a guest.
impl From<String> for ParticipantKind {
    fn from(text: String) -> Self {
        if text == "HOST" { Self::Host } else { Self::Guest }
    }
}

/// What a guest's join came to, decided by the statement that records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Recorded: waiting in the lobby, or let in when the room has none.
    Joined,
    /// A ban covers the browser (or the earlier session it showed).
    Banned,
    /// As many people are in the lecture as the room allows.
    Full,
    /// The room is no longer as the caller read it (its `version` moved on, or it is gone): read it again and
    /// decide anew.
    RoomChanged,
}

/// A participant row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ParticipantRecord {
    pub id: String,
    pub room_id: String,
    /// The lecture this row belongs to: a session admits to one lecture only.
    pub lecture_id: String,
    /// The LiveKit identity: opaque, never the session secret.
    pub identity: String,
    #[sqlx(try_from = "String")]
    pub kind: ParticipantKind,
    pub user_id: Option<String>,
    pub display_name: String,
    pub fingerprint: Option<String>,
    pub session_hash: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[sqlx(try_from = "String")]
    pub admission: Admission,
    pub reason: Option<String>,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub created_at: i64,
    pub joined_at: Option<i64>,
    pub left_at: Option<i64>,
    /// When the host removed this participant (kick or ban): the session no longer opens the room.
    pub removed_at: Option<i64>,
    pub removed_reason: Option<String>,
    pub hand_raised_at: Option<i64>,
    /// The host's explicit speaking decision; `None` means the room's default rights.
    #[sqlx(try_from = "MaybeFlag")]
    pub publish_granted: Option<bool>,
}

impl ParticipantRecord {
    /// Someone arriving at `created_at`, waiting in the lobby, with nothing else known yet: the base the
    /// join path and the tests fill in with struct update syntax, so a new column gets its default here.
    pub fn arriving(
        id: String,
        room_id: String,
        lecture_id: String,
        identity: String,
        kind: ParticipantKind,
        display_name: String,
        created_at: i64,
    ) -> Self {
        Self {
            id,
            room_id,
            lecture_id,
            identity,
            kind,
            user_id: None,
            display_name,
            fingerprint: None,
            session_hash: None,
            ip: None,
            user_agent: None,
            admission: Admission::Pending,
            reason: None,
            decided_at: None,
            decided_by: None,
            created_at,
            joined_at: None,
            left_at: None,
            removed_at: None,
            removed_reason: None,
            hand_raised_at: None,
            publish_granted: None,
        }
    }
}

macro_rules! participant_columns {
    () => {
        "id, room_id, lecture_id, identity, kind, user_id, display_name, fingerprint, session_hash, ip, user_agent, admission, \
         reason, decided_at, decided_by, created_at, joined_at, left_at, removed_at, removed_reason, hand_raised_at, \
         publish_granted"
    };
}

/// A ban covers the participant row: by browser fingerprint or session, in its room or across its host's rooms.
macro_rules! ban_covers {
    () => {
        "EXISTS (SELECT 1 FROM bans b, rooms r WHERE r.id = participants.room_id \
         AND (b.room_id = r.id OR (b.room_id IS NULL AND b.host_id = r.host_id)) \
         AND (b.fingerprint = participants.fingerprint OR b.session_hash = participants.session_hash))"
    };
}

/// A participant row no ban covers and the host has not removed: approvals re-check this in the same
/// statement that admits.
macro_rules! admissible {
    () => {
        concat!("removed_at IS NULL AND NOT ", ban_covers!())
    };
}

/// A guest's row as `insert_guest` stores it (shared by the guests joining at the same moment): the
/// participant's 22 columns, then the room's `version`, its host, the hash of the session the browser showed
/// and the room's capacity. A row is stored only while the room is at that version, no ban covers the
/// fingerprint or that session, and the lecture has room for one more.
static GUEST_ROWS: super::writer::SharedInsert = super::writer::SharedInsert {
    head: concat!(
        "INSERT INTO participants (",
        participant_columns!(),
        ") SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, v.column10, v.column11, v.column12, v.column13, v.column14, v.column15, v.column16, v.column17, v.column18, v.column19, v.column20, v.column21, v.column22 FROM"
    ),
    width: 26,
    tail: ") AS v WHERE EXISTS (SELECT 1 FROM rooms WHERE id = v.column2 AND version = v.column23) \
           AND NOT EXISTS (SELECT 1 FROM bans WHERE (room_id = v.column2 OR (room_id IS NULL AND host_id = v.column24)) \
           AND (fingerprint = v.column8 OR (CAST(v.column25 AS TEXT) IS NOT NULL AND session_hash = v.column25))) \
           AND (CAST(v.column26 AS BIGINT) IS NULL OR (SELECT COUNT(*) FROM participants \
           WHERE lecture_id = v.column3 AND admission = 'APPROVED' AND left_at IS NULL) < CAST(v.column26 AS BIGINT))",
    stored: "SELECT id FROM participants WHERE id IN",
    texts: super::writer::StatementTexts::new(),
};

/// Binds `p`'s columns in `participant_columns!()` order: the statement's first 22 values. Takes the record
/// by value: sqlx's `Any` values own their text, so a borrowed string would be copied once more.
fn bind_participant(query: Statement, p: ParticipantRecord) -> Statement {
    query
        .bind(p.id)
        .bind(p.room_id)
        .bind(p.lecture_id)
        .bind(p.identity)
        .bind(match p.kind {
            ParticipantKind::Guest => "GUEST",
            ParticipantKind::Host => "HOST",
        })
        .bind(p.user_id)
        .bind(p.display_name)
        .bind(p.fingerprint)
        .bind(p.session_hash)
        .bind(p.ip)
        .bind(p.user_agent)
        .bind(p.admission.as_str())
        .bind(p.reason)
        .bind(p.decided_at)
        .bind(p.decided_by)
        .bind(p.created_at)
        .bind(p.joined_at)
        .bind(p.left_at)
        .bind(p.removed_at)
        .bind(p.removed_reason)
        .bind(p.hand_raised_at)
        .bind(p.publish_granted.map(i32::from))
}

impl Store {
    pub async fn insert_participant(&self, p: &ParticipantRecord) -> Result<()> {
        let insert = sqlx::query(concat!(
            "INSERT INTO participants (",
            participant_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        ));
        self.write(bind_participant(insert, p.clone())).await.db("participant")?;
        Ok(())
    }

    /// Records a guest arriving at `room`'s current lecture. The statement that stores the row also checks
    /// what the caller decided on, so a join is one round trip: that `room` is the room as stored (its
    /// `version`: the caller may have read it from the cache, and another process may have changed it
    /// since), that no ban covers the browser's fingerprint or `previous_session` (a hash), and that the
    /// lecture has room for one more (`max_participants`). When nothing was stored, says why.
    pub async fn insert_guest(
        &self,
        room: &RoomRecord,
        p: &ParticipantRecord,
        previous_session: Option<&str>,
    ) -> Result<JoinOutcome> {
        let bind = {
            let (p, version, host_id) = (p.clone(), room.version, room.host_id.clone());
            let (previous_session, max) = (previous_session.map(str::to_owned), room.max_participants);
            move |statement: Statement| {
                bind_participant(statement, p).bind(version).bind(host_id).bind(previous_session).bind(max)
            }
        };
        // Guests who wait in the lobby do not count towards the capacity, so their rows can share one
        // statement (the count it checks is taken before any of them); one let in at once is stored alone.
        let shareable = p.admission == Admission::Pending || room.max_participants.is_none();
        let stored = match self.row_writer() {
            Some(writer) => writer.insert_row(&GUEST_ROWS, p.id.clone(), shareable, bind).await.db("participant")?,
            None => {
                let insert = super::writer::one_row(&GUEST_ROWS, self.dialect(), bind);
                self.write(insert).await.db("participant")?.rows_affected() == 1
            }
        };
        if stored {
            return Ok(JoinOutcome::Joined);
        }
        // Nothing stored: find out why (rare, so the extra reads do not matter).
        if self.room_version(&room.id).await? != Some(room.version) {
            return Ok(JoinOutcome::RoomChanged);
        }
        if let Some(max) = room.max_participants {
            if self.count_admitted(&room.lecture_id).await? >= max {
                return Ok(JoinOutcome::Full);
            }
        }
        let fingerprint = p.fingerprint.as_deref().unwrap_or_default();
        if self.is_banned(&room.id, &room.host_id, fingerprint, previous_session).await? {
            return Ok(JoinOutcome::Banned);
        }
        // Something moved between the insert and the checks: the caller reads the room again and retries.
        Ok(JoinOutcome::RoomChanged)
    }

    /// Records a host (or admin) entering a lecture; one row per lecture and user, kept across re-joins.
    pub async fn upsert_host_participant(&self, p: &ParticipantRecord) -> Result<()> {
        let existing = self.participant_by_identity(&p.lecture_id, &p.identity).await?;
        if existing.is_none() {
            match self.insert_participant(p).await {
                // Two tabs of the same host racing: the other insert won, which is the same outcome.
                Err(Error::Conflict { code: "participant_exists", .. }) | Ok(()) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    pub async fn participant_by_identity(&self, lecture_id: &str, identity: &str) -> Result<Option<ParticipantRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            participant_columns!(),
            " FROM participants WHERE lecture_id = $1 AND identity = $2"
        ))
        .bind(lecture_id)
        .bind(identity)
        .fetch_optional(self.reader())
        .await
        .db("participant")
    }

    /// The guest session with this secret's hash (in whichever lecture it was made).
    pub async fn participant_by_session(&self, session_hash: &str) -> Result<Option<ParticipantRecord>> {
        sqlx::query_as(concat!("SELECT ", participant_columns!(), " FROM participants WHERE session_hash = $1"))
            .bind(session_hash)
            .fetch_optional(self.reader())
            .await
            .db("participant")
    }

    pub async fn participant_by_id(&self, lecture_id: &str, id: &str) -> Result<ParticipantRecord> {
        sqlx::query_as(concat!(
            "SELECT ",
            participant_columns!(),
            " FROM participants WHERE lecture_id = $1 AND id = $2"
        ))
        .bind(lecture_id)
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .db("participant")?
        .ok_or_else(|| Error::not_found("entry_not_found", "no such lobby entry"))
    }

    /// The participants with these ids (those that exist), in no particular order, each with whether a ban
    /// covers it (the rule approvals check, `ban_covers!`): a few statements for a batch of thousands.
    pub async fn participants_by_ids(&self, ids: &[&str]) -> Result<Vec<(ParticipantRecord, bool)>> {
        /// Ids per statement: well under SQLite's limit on bound values.
        const CHUNK: usize = 500;
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let list = placeholders.join(", ");
            let rows = format!(concat!("SELECT ", participant_columns!(), " FROM participants WHERE id IN ({})"), list);
            let rows = chunk.iter().fold(sqlx::query_as(sqlx::AssertSqlSafe(rows)), |q, id| q.bind(*id));
            let rows: Vec<ParticipantRecord> = rows.fetch_all(self.reader()).await.db("participant")?;
            let banned = format!(concat!("SELECT id FROM participants WHERE id IN ({}) AND ", ban_covers!()), list);
            let banned = chunk.iter().fold(sqlx::query_scalar(sqlx::AssertSqlSafe(banned)), |q, id| q.bind(*id));
            let banned: std::collections::HashSet<String> =
                banned.fetch_all(self.reader()).await.db("participant")?.into_iter().collect();
            found.extend(rows.into_iter().map(|p| {
                let covered = banned.contains(&p.id);
                (p, covered)
            }));
        }
        Ok(found)
    }

    /// Everyone who came to a lecture (waiting, admitted or turned away), in arrival order.
    pub async fn participants_of_lecture(&self, lecture_id: &str) -> Result<Vec<ParticipantRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            participant_columns!(),
            " FROM participants WHERE lecture_id = $1 ORDER BY created_at, id"
        ))
        .bind(lecture_id)
        .fetch_all(self.reader())
        .await
        .db("participant")
    }

    /// Guests waiting in a lecture's lobby, longest-waiting first.
    pub async fn pending_lobby(&self, lecture_id: &str) -> Result<Vec<ParticipantRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            participant_columns!(),
            " FROM participants WHERE lecture_id = $1 AND admission = 'PENDING' ORDER BY created_at, id"
        ))
        .bind(lecture_id)
        .fetch_all(self.reader())
        .await
        .db("participant")
    }

    pub(super) async fn participants_where_hand_raised(&self, lecture_id: &str) -> Result<Vec<ParticipantRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            participant_columns!(),
            " FROM participants WHERE lecture_id = $1 AND hand_raised_at IS NOT NULL AND removed_at IS NULL \
             ORDER BY hand_raised_at, id"
        ))
        .bind(lecture_id)
        .fetch_all(self.reader())
        .await
        .db("participant")
    }

    /// People let into the lecture who have not left it.
    pub async fn count_admitted(&self, lecture_id: &str) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM participants WHERE lecture_id = $1 AND admission = 'APPROVED' AND left_at IS NULL",
        )
        .bind(lecture_id)
        .fetch_one(self.reader())
        .await
        .db("participant")
    }

    /// Decides one waiting entry. An entry that is no longer waiting is a conflict: a decision is made once.
    pub async fn decide_entry(
        &self,
        lecture_id: &str,
        id: &str,
        admission: Admission,
        reason: Option<&str>,
        by: &str,
    ) -> Result<ParticipantRecord> {
        let now = crate::time::now_ms();
        let decided: Vec<ParticipantRecord> = self
            .write_returning(
                sqlx::query(concat!(
                    "UPDATE participants SET admission = $3, reason = $4, decided_at = $5, decided_by = $6 \
                     WHERE lecture_id = $1 AND id = $2 AND admission = 'PENDING' AND ($3 <> 'APPROVED' OR ",
                    admissible!(),
                    ") RETURNING ",
                    participant_columns!()
                ))
                .bind(lecture_id)
                .bind(id)
                .bind(admission.as_str())
                .bind(reason)
                .bind(now)
                .bind(by),
            )
            .await
            .db("participant")?;
        if let Some(entry) = decided.into_iter().next() {
            return Ok(entry);
        }
        let entry = self.participant_by_id(lecture_id, id).await?;
        if entry.admission == Admission::Pending {
            return Err(Error::conflict("guest_banned", "this guest is banned or was removed and cannot be let in"));
        }
        Err(Error::conflict(
            "already_decided",
            format!("this guest was already {}", entry.admission.as_str().to_lowercase()),
        ))
    }

    /// Approves the longest-waiting entries of a lecture in one transaction, at most `limit` of them (for rooms
    /// with a participant cap). Returns the approved entries.
    pub async fn approve_all(&self, lecture_id: &str, limit: Option<i64>, by: &str) -> Result<Vec<ParticipantRecord>> {
        let now = crate::time::now_ms();
        self.write_returning(
            sqlx::query(concat!(
                "UPDATE participants SET admission = 'APPROVED', decided_at = $3, decided_by = $4 WHERE id IN (\
             SELECT id FROM participants WHERE lecture_id = $1 AND admission = 'PENDING' AND ",
                admissible!(),
                " ORDER BY created_at, id LIMIT $2) AND admission = 'PENDING' RETURNING ",
                participant_columns!()
            ))
            .bind(lecture_id)
            .bind(limit.unwrap_or(i64::MAX))
            .bind(now)
            .bind(by),
        )
        .await
        .db("participant")
    }
}
