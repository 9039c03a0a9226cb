//! Attendance of one lecture: every person with their first join, last leave, minutes present (summed over
//! rejoins) and number of joins, from the stays LiveKit's webhooks recorded.

use std::collections::HashMap;

use serde::Serialize;

use crate::store::{LectureRecord, ParticipantKind, ParticipantRecord, StayRecord};

/// One person's attendance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    pub name: String,
    /// `host` or `guest`.
    pub role: &'static str,
    pub first_join: chrono::DateTime<chrono::Utc>,
    /// `None` while they are still in the room.
    pub last_leave: Option<chrono::DateTime<chrono::Utc>>,
    pub minutes_present: f64,
    pub joins: u32,
}

/// Who a participant row is, across rows: a guest who rejoins through the invite link gets a new row (and
/// identity) but keeps their browser; a host keeps their account.
fn person_key(p: &ParticipantRecord) -> String {
    match (&p.kind, &p.user_id, &p.fingerprint) {
        (ParticipantKind::Host, Some(user), _) => format!("user:{user}"),
        (_, _, Some(fingerprint)) => format!("browser:{fingerprint}"),
        _ => format!("row:{}", p.id),
    }
}

/// Attendance from the lecture's participants and stays. A stay still open counts until the lecture's end
/// (or `now` while it is live); stays of identities confctl did not admit are not counted.
pub fn compute(
    lecture: &LectureRecord,
    participants: &[ParticipantRecord],
    stays: &[StayRecord],
    now: i64,
) -> Vec<Attendee> {
    let by_identity: HashMap<&str, &ParticipantRecord> =
        participants.iter().map(|p| (p.identity.as_str(), p)).collect();
    let cap = lecture.ended_at.unwrap_or(now);
    struct Acc {
        name: String,
        role: &'static str,
        first: i64,
        last_leave: Option<i64>,
        open: bool,
        ms: i64,
        joins: u32,
        name_at: i64,
    }
    let mut people: HashMap<String, Acc> = HashMap::new();
    for stay in stays {
        let Some(p) = by_identity.get(stay.identity.as_str()) else { continue };
        let end = stay.left_at.unwrap_or(cap).min(cap.max(stay.joined_at));
        let acc = people.entry(person_key(p)).or_insert(Acc {
            name: p.display_name.clone(),
            role: if p.kind == ParticipantKind::Host { "host" } else { "guest" },
            first: stay.joined_at,
            last_leave: None,
            open: false,
            ms: 0,
            joins: 0,
            name_at: p.created_at,
        });
        // The name they used last is the one people know them by.
        if p.created_at > acc.name_at {
            acc.name = p.display_name.clone();
            acc.name_at = p.created_at;
        }
        acc.first = acc.first.min(stay.joined_at);
        acc.ms += (end - stay.joined_at).max(0);
        acc.joins += 1;
        match stay.left_at {
            Some(left) => acc.last_leave = Some(acc.last_leave.map_or(left, |l| l.max(left))),
            None => acc.open = true,
        }
    }
    let mut out: Vec<(i64, Attendee)> = people
        .into_values()
        .map(|a| {
            let attendee = Attendee {
                name: a.name,
                role: a.role,
                first_join: crate::time::to_datetime(a.first),
                // Someone still inside (in a live lecture) has not left; in an ended one the end is their leave.
                last_leave: match (a.open, lecture.ended_at) {
                    (true, None) => None,
                    (true, Some(end)) => Some(crate::time::to_datetime(end)),
                    (false, _) => a.last_leave.map(crate::time::to_datetime),
                },
                minutes_present: (a.ms as f64 / 60_000.0 * 10.0).round() / 10.0,
                joins: a.joins,
            };
            (a.first, attendee)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    out.into_iter().map(|(_, a)| a).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Admission, LectureStatus};

    fn person(id: &str, identity: &str, name: &str, fingerprint: &str, created_at: i64) -> ParticipantRecord {
        ParticipantRecord {
            fingerprint: Some(fingerprint.into()),
            admission: Admission::Approved,
            ..ParticipantRecord::arriving(
                id.into(),
                "r".into(),
                "l".into(),
                identity.into(),
                ParticipantKind::Guest,
                name.into(),
                created_at,
            )
        }
    }

    fn stay(identity: &str, joined_at: i64, left_at: Option<i64>) -> StayRecord {
        StayRecord { identity: identity.into(), joined_at, left_at }
    }

    #[test]
    fn minutes_add_up_over_rejoins_and_new_sessions_of_one_browser() {
        let lecture = LectureRecord {
            id: "l".into(),
            room_id: "r".into(),
            number: 1,
            status: LectureStatus::Ended,
            created_at: 0,
            started_at: Some(0),
            ended_at: Some(3_600_000),
        };
        let people = [
            person("p1", "g_a", "Ann", "fp-ann", 0),
            // Ann kicked, back through the invite link with a new session and a new name.
            person("p2", "g_a2", "Ann B.", "fp-ann", 1_000),
            person("p3", "g_b", "Bob", "fp-bob", 0),
        ];
        let stays = [
            stay("g_a", 60_000, Some(660_000)),    // 10 min
            stay("g_a", 900_000, Some(1_200_000)), // 5 min (reload)
            stay("g_a2", 1_800_000, None),         // 30 min, open at the end
            stay("g_b", 0, Some(120_000)),         // 2 min
            stay("assistant", 0, Some(3_600_000)), // not a participant: not counted
        ];
        let rows = compute(&lecture, &people, &stays, 9_999_999);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "Bob");
        assert_eq!((rows[0].minutes_present, rows[0].joins), (2.0, 1));
        assert_eq!(rows[1].name, "Ann B.");
        assert_eq!((rows[1].minutes_present, rows[1].joins), (45.0, 3));
        assert_eq!(rows[1].first_join, crate::time::to_datetime(60_000));
        assert_eq!(rows[1].last_leave, Some(crate::time::to_datetime(3_600_000)));
    }
}
