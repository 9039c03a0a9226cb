//! What confctl hears from the assistant in each lecture — captions, and the status reports it sends while it
//! is in one (joined and working, or what fails: joining the media room, speech to text) — and the state the
//! monitor shows for a room from its current lecture's: `off`, `on` (not live), `joining`, `captioning` or `failing`. Kept in memory,
//! like the event hub: a restarted server knows again at the assistant's next report. With several replicas
//! the one the assistant talks to tells the others (an event: every report, a caption at most every
//! [`TELL_CAPTIONS_EVERY`] unless the state changed), so every replica's monitor shows the same. Times are the
//! application clock's (callers pass `App::clock`'s now), like the room times they are compared with.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{RoomRecord, RoomStatus};

/// The assistant reports at least this often while it is in a room.
pub const REPORT_EVERY: Duration = Duration::from_secs(30);
/// Three reports missed: the assistant is gone (or cannot reach confctl).
const SILENT_AFTER_MS: i64 = 90_000;
/// How long a lecture may run before an assistant that has not been heard from counts as failing.
const JOIN_GRACE_MS: i64 = 60_000;
/// How often other replicas hear that captions still flow in a lecture (well inside [`SILENT_AFTER_MS`]).
pub const TELL_CAPTIONS_EVERY: Duration = Duration::from_secs(10);
/// Lectures are forgotten an hour after the last word from their assistant.
const FORGET_AFTER_MS: i64 = 3_600_000;

/// The assistant's state in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssistantState {
    /// Switched off for the room.
    Off,
    /// On, and no lecture is live (the room is ready or archived) — or this process does not serve the agent
    /// API and cannot tell more.
    On,
    /// The lecture has just started and the assistant has not been heard from yet.
    Joining,
    Captioning,
    Failing,
}

/// The assistant in one room, as the monitor shows it (flattened into a room's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantStatus {
    #[serde(rename = "assistant")]
    pub state: AssistantState,
    /// Why it is failing.
    pub assistant_problem: Option<String>,
    pub last_caption_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A status report as the assistant posts it (`POST /api/agent/lectures/{id}/status`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Report {
    /// `None` while all is well; otherwise what fails, in a sentence.
    #[serde(default)]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct LectureHeard {
    /// The last report or caption.
    last_ms: i64,
    last_caption_ms: Option<i64>,
    /// The last report's problem; a caption clears it (speech to text works).
    problem: Option<String>,
    /// When other replicas were last told of a caption.
    told_ms: Option<i64>,
}

/// What was heard from the assistant in a lecture, as replicas tell each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "heard", rename_all = "snake_case")]
pub enum News {
    /// A caption (speech to text works).
    Caption,
    /// A status report.
    Report { problem: Option<String> },
}

/// Everything heard, by lecture id; lives in the hub.
#[derive(Debug, Default)]
pub struct Heard {
    lectures: Mutex<HashMap<String, LectureHeard>>,
    /// When this process began serving the agent API (0: it does not, like `confctl admin room`, which reads
    /// the database and can only say on or off). A lecture already live then gets the grace period anew.
    since_ms: AtomicI64,
}

impl Heard {
    /// The agent API is served from `now_ms` on.
    pub fn listen(&self, now_ms: i64) {
        self.since_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Records a caption; true when the lecture's problem state changed (worth an admin event).
    pub fn captioned(&self, lecture_id: &str, now: i64) -> bool {
        self.hear(lecture_id, now, |r| {
            r.last_caption_ms = Some(now);
            r.problem = None;
        })
    }

    /// Records a report; true when the lecture's problem state changed.
    pub fn reported(&self, lecture_id: &str, report: Report, now: i64) -> bool {
        self.hear(lecture_id, now, |r| r.problem = report.problem.map(|p| p.chars().take(300).collect()))
    }

    /// Records what another replica heard (or this one, again): true when the state changed.
    pub fn news(&self, lecture_id: &str, news: News, at: i64) -> bool {
        match news {
            News::Caption => self.captioned(lecture_id, at),
            News::Report { problem } => self.reported(lecture_id, Report { problem }, at),
        }
    }

    /// Whether other replicas should hear of a caption at `now` (the state `changed`, or they were last told
    /// [`TELL_CAPTIONS_EVERY`] ago); if so, notes that they were.
    pub fn tell_caption(&self, lecture_id: &str, changed: bool, now: i64) -> bool {
        let mut lectures = self.lectures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(heard) = lectures.get_mut(lecture_id) else { return false };
        let every = i64::try_from(TELL_CAPTIONS_EVERY.as_millis()).unwrap_or(i64::MAX);
        let due = changed || heard.told_ms.is_none_or(|told| now - told >= every);
        if due {
            heard.told_ms = Some(now);
        }
        due
    }

    fn hear(&self, lecture_id: &str, now: i64, change: impl FnOnce(&mut LectureHeard)) -> bool {
        let mut lectures = self.lectures.lock().unwrap_or_else(|p| p.into_inner());
        if lectures.len() > 256 {
            lectures.retain(|_, h| now - h.last_ms < FORGET_AFTER_MS);
        }
        let known = lectures.contains_key(lecture_id);
        let heard = lectures.entry(lecture_id.to_owned()).or_default();
        if known && now < heard.last_ms {
            // Older than what is known (another replica's news, arriving late).
            return false;
        }
        let silent = now - heard.last_ms >= SILENT_AFTER_MS;
        let before = heard.problem.clone();
        change(heard);
        heard.last_ms = now;
        !known || silent || before != heard.problem
    }

    /// The assistant's state in `room`'s current lecture at `now`, with `workers` assistant workers connected
    /// to this process.
    pub fn status(&self, room: &RoomRecord, workers: usize, now: i64) -> AssistantStatus {
        let heard = self.lectures.lock().unwrap_or_else(|p| p.into_inner()).get(&room.lecture_id).cloned();
        let last_caption_at = heard.as_ref().and_then(|h| h.last_caption_ms).map(crate::time::to_datetime);
        let since_ms = self.since_ms.load(Ordering::Relaxed);
        let (state, problem) = match (room.ai_assistant, room.status) {
            (false, _) => (AssistantState::Off, None),
            (true, RoomStatus::Ready | RoomStatus::Archived) => (AssistantState::On, None),
            (true, RoomStatus::Live) if since_ms == 0 => (AssistantState::On, None),
            (true, RoomStatus::Live) => match heard.filter(|h| now - h.last_ms < SILENT_AFTER_MS) {
                Some(LectureHeard { problem: Some(problem), .. }) => (AssistantState::Failing, Some(problem)),
                Some(_) => (AssistantState::Captioning, None),
                None => {
                    let live_since = room.started_at.unwrap_or(now).max(since_ms);
                    if now - live_since < JOIN_GRACE_MS {
                        (AssistantState::Joining, None)
                    } else if workers == 0 {
                        (AssistantState::Failing, Some("no assistant is connected to this server".to_owned()))
                    } else {
                        (AssistantState::Failing, Some("the assistant has not reported from this lecture".to_owned()))
                    }
                }
            },
        };
        AssistantStatus { state, assistant_problem: problem, last_caption_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn room(ai: bool, status: RoomStatus, started_ms_ago: i64) -> RoomRecord {
        RoomRecord {
            id: "r".into(),
            name: "R".into(),
            invite_code: String::new(),
            host_id: "h".into(),
            status,
            lobby_enabled: true,
            pin_hash: None,
            webinar_mode: false,
            locked: false,
            max_participants: None,
            guest_screen_share: false,
            ai_assistant: ai,
            guests_muted: false,
            guest_uploads: false,
            language: None,
            lectures_for_participants: false,
            created_at: NOW - started_ms_ago,
            archived_at: None,
            lecture_id: "l".into(),
            lecture_number: 1,
            started_at: Some(NOW - started_ms_ago),
            last_ended_at: None,
            version: 0,
        }
    }

    #[test]
    fn the_state_follows_the_room_reports_captions_and_silence() {
        let heard = Heard::default();
        let late = room(true, RoomStatus::Live, 120_000);
        assert_eq!(heard.status(&late, 0, NOW).state, AssistantState::On, "a process not serving the agent API");
        heard.listen(NOW - 600_000);
        let state = |r: &RoomRecord, workers, now| heard.status(r, workers, now).state;
        assert_eq!(state(&room(false, RoomStatus::Live, 0), 1, NOW), AssistantState::Off);
        assert_eq!(state(&room(true, RoomStatus::Ready, 0), 1, NOW), AssistantState::On);
        assert_eq!(state(&room(true, RoomStatus::Live, 1_000), 1, NOW), AssistantState::Joining);
        let status = heard.status(&late, 0, NOW);
        assert_eq!(status.state, AssistantState::Failing);
        assert!(status.assistant_problem.unwrap().contains("no assistant"));

        assert!(heard.reported("l", Report { problem: None }, NOW), "first word from the room");
        assert_eq!(state(&late, 1, NOW), AssistantState::Captioning);
        assert!(!heard.reported("l", Report { problem: None }, NOW + 30_000), "nothing changed");
        assert!(heard.reported("l", Report { problem: Some("speech to text: 503".into()) }, NOW + 60_000));
        let status = heard.status(&late, 1, NOW + 60_000);
        assert_eq!(
            (status.state, status.assistant_problem.as_deref()),
            (AssistantState::Failing, Some("speech to text: 503"))
        );
        assert!(heard.captioned("l", NOW + 61_000), "a caption shows speech to text works again");
        let status = heard.status(&late, 1, NOW + 61_000);
        assert_eq!(
            (status.state, status.last_caption_at.map(|t| t.timestamp_millis())),
            (AssistantState::Captioning, Some(NOW + 61_000))
        );
        // Three reports missed: failing, and the next word from the room is news again.
        let silent = heard.status(&late, 1, NOW + 61_000 + SILENT_AFTER_MS);
        assert_eq!(silent.state, AssistantState::Failing, "{silent:?}");
        assert!(heard.reported("l", Report { problem: None }, NOW + 200_000));
    }

    #[test]
    fn a_restarted_server_gives_live_lectures_the_grace_period_again() {
        let heard = Heard::default();
        heard.listen(NOW);
        assert_eq!(heard.status(&room(true, RoomStatus::Live, 600_000), 1, NOW + 1_000).state, AssistantState::Joining);
        let late = heard.status(&room(true, RoomStatus::Live, 600_000), 1, NOW + JOIN_GRACE_MS);
        assert_eq!(late.state, AssistantState::Failing);
        assert!(late.assistant_problem.unwrap().contains("has not reported"));
    }

    #[test]
    fn replicas_hear_captions_every_so_often_and_late_news_changes_nothing() {
        let heard = Heard::default();
        let every = i64::try_from(TELL_CAPTIONS_EVERY.as_millis()).unwrap();
        assert!(!heard.tell_caption("l", false, NOW), "nothing heard yet");
        let changed = heard.captioned("l", NOW);
        assert!(heard.tell_caption("l", changed, NOW), "the first caption is news");
        assert!(!heard.captioned("l", NOW + 1_000));
        assert!(!heard.tell_caption("l", false, NOW + 1_000), "captions still flowing: not yet");
        assert!(heard.tell_caption("l", false, NOW + every), "but every so often");
        assert!(heard.tell_caption("l", true, NOW + every + 1), "and at once when the state changed");

        // News from another replica that is older than what is known changes nothing.
        assert!(!heard.news("l", News::Report { problem: Some("stt: 503".into()) }, NOW + 500));
        let late = room(true, RoomStatus::Live, 120_000);
        heard.listen(NOW - 600_000);
        assert_eq!(heard.status(&late, 1, NOW + 2_000).state, AssistantState::Captioning);
        assert!(heard.news("l", News::Report { problem: Some("stt: 503".into()) }, NOW + 20_000));
        assert_eq!(heard.status(&late, 1, NOW + 20_000).state, AssistantState::Failing);
    }
}
