//! Screens pinned down with ratatui's `TestBackend` at 80×24 and 200×50 (plain-text snapshot files under
//! `src/tui/snapshots/`, rewritten with `UPDATE_SNAPSHOTS=1`), the keys, and how events change the state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use serde_json::json;

use super::client::{SseParser, StreamItem};
use super::model::{Action, Link, Prompt, Screen, State};
use super::view::{self, Theme};
use super::wire::{AdminEvent, Detail, Snapshot};
use super::{Cmd, Msg, Outcome, handle_key, handle_msg};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 30, 0).unwrap()
}

fn at(min_ago: i64) -> String {
    (now() - chrono::Duration::minutes(min_ago)).to_rfc3339()
}

fn snapshot() -> Snapshot {
    serde_json::from_value(json!({
        "instance": {"version": "0.1.0", "database": "postgres", "livekitReachable": true, "eventStreams": 2,
                     "assistantWorkers": 1, "requestsPerSecond": 12.3, "certificateExpiresAt": "2026-05-01T00:00:00Z"},
        "lastEventId": 100,
        "rooms": [
            {"id": "r1", "name": "Linear Algebra", "host": "Prof. Ada", "status": "LIVE", "createdAt": at(90),
             "startedAt": at(65), "endedAt": null, "participants": 42, "publishers": 3, "hands": 2, "locked": true,
             "guestsMuted": false, "assistant": "failing",
             "assistantProblem": "speech to text fails: connection refused", "lastCaptionAt": at(3),
             "lobby": [{"id": "e1", "displayName": "Grace", "waitingSince": at(4)},
                       {"id": "e2", "displayName": "Alan", "waitingSince": at(1)}]},
            {"id": "r2", "name": "Organic Chemistry", "host": "Dr. Curie", "status": "READY", "createdAt": at(10),
             "startedAt": null, "endedAt": null, "participants": 0, "publishers": 0, "hands": 0, "locked": false,
             "guestsMuted": false, "assistant": "on", "lobby": []},
            {"id": "r3", "name": "Intro to Rust", "host": "Ferris", "status": "ARCHIVED", "createdAt": at(300),
             "startedAt": at(280), "endedAt": at(190), "participants": 0, "publishers": 0, "hands": 0,
             "locked": false, "guestsMuted": true, "assistant": "off", "lobby": []}
        ]
    }))
    .unwrap()
}

fn detail() -> Detail {
    let snap = snapshot();
    serde_json::from_value(json!({
        "room": serde_json::to_value(RoomJson(&snap.rooms[0])).unwrap(),
        "participants": [
            {"identity": "host-ada", "name": "Prof. Ada", "role": "host", "joinedAt": at(65), "speakingAllowed": true, "audioMuted": false},
            {"identity": "g-bob", "name": "Bob", "role": "guest", "joinedAt": at(30), "speakingAllowed": true, "audioMuted": true}
        ],
        "hands": [{"identity": "g-bob"}],
        "recentEvents": [
            {"id": 98, "at": at(4), "type": "guest_waiting", "roomId": "r1", "data": {"entry": {"id": "e1", "displayName": "Grace", "waitingSince": at(4)}}},
            {"id": 99, "at": at(2), "type": "audit", "roomId": "r1", "data": {"action": "moderation.lock", "actor": "ada@uni.edu"}}
        ]
    }))
    .unwrap()
}

/// Serialises a room back into the API's JSON (the model only deserialises).
struct RoomJson<'a>(&'a super::wire::Room);

impl serde::Serialize for RoomJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        json!({"id": r.id, "name": r.name, "host": r.host, "status": r.status, "createdAt": r.created_at,
               "startedAt": r.started_at, "endedAt": r.ended_at, "participants": r.participants,
               "publishers": r.publishers, "hands": r.hands, "locked": r.locked, "guestsMuted": r.guests_muted,
               "assistant": r.assistant, "assistantProblem": r.assistant_problem, "lastCaptionAt": r.last_caption_at,
               "lobby": r.lobby.iter().map(|e| json!({"id": e.id, "displayName": e.display_name, "waitingSince": e.waiting_since})).collect::<Vec<_>>()})
        .serialize(s)
    }
}

fn state() -> State {
    let mut s = State::new("https://lectures.uni.edu", false);
    s.apply_snapshot(snapshot());
    s.now = now();
    s
}

fn event(id: u64, kind: &str, room: &str, data: serde_json::Value) -> AdminEvent {
    serde_json::from_value(json!({"id": id, "at": now().to_rfc3339(), "type": kind, "roomId": room, "data": data}))
        .unwrap()
}

fn render(state: &State, theme: Theme, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| view::draw(f, state, theme)).unwrap();
    terminal.backend().buffer().clone()
}

fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Compares with `src/tui/snapshots/NAME.txt`; `UPDATE_SNAPSHOTS=1` writes it instead.
fn snap(name: &str, state: &State, width: u16, height: u16) -> String {
    let got = text(&render(state, Theme { color: true }, width, height));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tui/snapshots").join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_SNAPSHOTS=1 and review the file", path.display()));
    assert_eq!(got, want, "screen {name} changed; if intended, run with UPDATE_SNAPSHOTS=1 and review the diff");
    got
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(state: &mut State, keys: &str) -> Vec<Outcome> {
    keys.chars().map(|c| handle_key(state, key(KeyCode::Char(c)))).collect()
}

#[test]
fn rooms_list_at_both_sizes() {
    let mut s = state();
    s.apply_event(event(
        101,
        "guest_waiting",
        "r1",
        json!({"entry": {"id": "e9", "displayName": "Ida", "waitingSince": now().to_rfc3339()}}),
    ));
    let small = snap("rooms_80x24", &s, 80, 24);
    assert!(small.contains("Linear Algebra") && small.contains("LOBBY") && !small.contains("HOST"), "{small}");
    let big = snap("rooms_200x50", &s, 200, 50);
    assert!(big.contains("Prof. Ada") && big.contains("ACTIVITY") && big.contains("locked"), "{big}");
    assert!(big.contains("1 assistant worker(s)") && big.contains("certificate until 2026-05-01 (59 d)"), "{big}");
    // Requests per second and the failing assistant show at either size.
    for screen in [&small, &big] {
        assert!(screen.contains("12.3 req/s") && screen.contains("1 assistant(s) failing"), "{screen}");
    }
    assert!(big.contains("failing") && small.contains("LA"), "{small}");
    // Sorted by activity: the busy lecture first.
    assert!(big.find("Linear Algebra").unwrap() < big.find("Organic Chemistry").unwrap());
}

#[test]
fn room_detail_at_both_sizes() {
    let mut s = state();
    assert_eq!(handle_key(&mut s, key(KeyCode::Enter)), Outcome::Send(vec![Cmd::Detail("r1".into())]));
    handle_msg(&mut s, Msg::Detail(Box::new(detail())));
    let small = snap("detail_80x24", &s, 80, 24);
    assert!(small.contains("Lobby (2)") && small.contains("Grace"), "{small}");
    let big = snap("detail_200x50", &s, 200, 50);
    assert!(big.contains("Participants (2)") && big.contains("moderation.lock by ada@uni.edu"), "{big}");
    assert!(big.contains("assistant FAILING: speech to text fails: connection refused"), "{big}");
}

#[test]
fn the_assistant_state_and_the_header_figures_follow_the_stream() {
    let mut s = state();
    handle_key(&mut s, key(KeyCode::Enter));
    handle_msg(&mut s, Msg::Detail(Box::new(detail())));
    let data = json!({"assistant": "captioning", "assistantProblem": null, "lastCaptionAt": at(0)});
    s.apply_event(event(101, "assistant", "r1", data));
    let room = &s.detail.as_ref().unwrap().room;
    assert_eq!((room.assistant.as_str(), room.assistant_problem.as_deref()), ("captioning", None));
    let screen = text(&render(&s, Theme { color: true }, 200, 50));
    assert!(screen.contains("assistant captioning (last caption 0s ago)") && !screen.contains("failing"), "{screen}");
    // The lecture ends: the assistant is merely on; the next one goes live and it is joining.
    s.apply_event(event(102, "lecture_ended", "r1", json!({})));
    assert_eq!(s.rooms[0].assistant, "on");
    s.apply_event(event(103, "room_status", "r1", json!({"status": "LIVE"})));
    assert_eq!(s.rooms[0].assistant, "joining");
    let stats = json!({"requestsPerSecond": 40.5, "eventStreams": 3, "assistantWorkers": 2});
    handle_msg(&mut s, Msg::Stats(serde_json::from_value(stats).unwrap()));
    let screen = text(&render(&s, Theme { color: true }, 200, 50));
    assert!(screen.contains("40.5 req/s") && screen.contains("2 assistant worker(s) · 3 event stream(s)"), "{screen}");
}

#[test]
fn help_overlay_lists_this_screens_keys() {
    let mut s = state();
    press(&mut s, "?");
    let small = snap("help_80x24", &s, 80, 24);
    assert!(small.contains("end the lecture") && small.contains("cycle the sort order"), "{small}");
    snap("help_200x50", &s, 200, 50);
    press(&mut s, "?");
    assert!(!s.help);
    // Read-only: no action keys in the help, and the action keys do nothing.
    let mut ro = State::new("https://lectures.uni.edu", true);
    ro.apply_snapshot(snapshot());
    let keys = view::keys(&ro);
    assert!(!keys.iter().any(|(_, what)| what.contains("approve") || what.contains("end the lecture")), "{keys:?}");
    press(&mut ro, "Axlm");
    assert_eq!(ro.prompt, Prompt::None);
}

#[test]
fn filter_narrows_the_list_and_esc_clears_it() {
    let mut s = state();
    press(&mut s, "/chem");
    assert_eq!(s.prompt, Prompt::Filter);
    let small = snap("filter_80x24", &s, 80, 24);
    assert!(small.contains("Organic Chemistry") && !small.contains("Linear Algebra"), "{small}");
    snap("filter_200x50", &s, 200, 50);
    assert_eq!(s.selected.as_deref(), Some("r2"), "the cursor moves onto what is visible");
    handle_key(&mut s, key(KeyCode::Enter));
    assert_eq!((s.prompt.clone(), s.filter.as_str()), (Prompt::None, "chem"));
    handle_key(&mut s, key(KeyCode::Esc));
    assert_eq!(s.filter, "");
    assert_eq!(s.visible_rooms().len(), 3);
}

#[test]
fn disconnected_state_keeps_the_place() {
    let mut s = state();
    press(&mut s, "j");
    let selected = s.selected.clone();
    handle_msg(&mut s, Msg::Down { attempt: 3, reason: "cannot connect".into() });
    let small = snap("disconnected_80x24", &s, 80, 24);
    assert!(small.contains("disconnected — retrying"), "{small}");
    snap("disconnected_200x50", &s, 200, 50);
    // A revoked token: said plainly, not retried.
    let mut refused = s.clone();
    handle_msg(&mut refused, Msg::Refused("this API token was revoked (api_token_revoked)".into()));
    assert!(text(&render(&refused, Theme { color: true }, 80, 24)).contains("refused: this API token was revoked"));
    // The server is back: a fresh snapshot, same selection, connected again.
    handle_msg(&mut s, Msg::Snapshot(Box::new(snapshot())));
    assert_eq!((s.selected.clone(), s.link.clone()), (selected, Link::Live));
}

#[test]
fn no_color_uses_only_bold_and_reverse() {
    let s = state();
    let plain = render(&s, Theme { color: false }, 80, 24);
    let mut reversed = false;
    for cell in plain.content() {
        assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "a colour in NO_COLOR mode: {cell:?}");
        reversed |= cell.modifier.contains(Modifier::REVERSED);
    }
    assert!(reversed, "the selected row is shown in reverse video");
    let coloured = render(&s, Theme { color: true }, 80, 24);
    assert!(coloured.content().iter().any(|c| c.fg != Color::Reset || c.bg != Color::Reset));
    assert_eq!(text(&plain), text(&coloured), "the same text either way");
}

#[test]
fn approving_from_the_detail_asks_first() {
    let mut s = state();
    handle_key(&mut s, key(KeyCode::Enter));
    handle_msg(&mut s, Msg::Detail(Box::new(detail())));
    press(&mut s, "j");
    press(&mut s, "a");
    let want = Action::Approve { room: "r1".into(), entry: "e2".into(), name: "Alan".into() };
    assert_eq!(s.prompt, Prompt::Confirm(want.clone()));
    assert!(text(&render(&s, Theme { color: true }, 80, 24)).contains("Let Alan into Linear Algebra?"));
    assert_eq!(press(&mut s, "y"), vec![Outcome::Send(vec![Cmd::Act(want)])]);
    // n cancels; Tab moves to participants, where B asks for a reason first.
    press(&mut s, "x");
    assert!(matches!(s.prompt, Prompt::Confirm(Action::End { .. })));
    press(&mut s, "n");
    assert_eq!(s.prompt, Prompt::None);
    handle_key(&mut s, key(KeyCode::Tab));
    press(&mut s, "jBspam");
    handle_key(&mut s, key(KeyCode::Enter));
    assert!(
        matches!(&s.prompt, Prompt::Confirm(Action::Ban { name, reason, .. }) if name == "Bob" && reason == "spam")
    );
    handle_key(&mut s, key(KeyCode::Esc));
    handle_key(&mut s, key(KeyCode::Backspace));
    assert_eq!((s.screen, s.detail.is_none()), (Screen::Rooms, true));
    assert_eq!(press(&mut s, "q"), vec![Outcome::Quit]);
    assert_eq!(handle_key(&mut s, KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), Outcome::Quit);
}

#[test]
fn events_update_counts_lobby_and_log() {
    let mut s = state();
    s.apply_event(event(
        101,
        "guest_waiting",
        "r2",
        json!({"entry": {"id": "e5", "displayName": "Ida", "waitingSince": now().to_rfc3339()}}),
    ));
    s.apply_event(event(102, "participant_joined", "r2", json!({"identity": "g1", "name": "Ida", "role": "guest"})));
    s.apply_event(event(103, "lobby_decided", "r1", json!({"entries": [{"id": "e1", "status": "APPROVED"}]})));
    s.apply_event(event(104, "room_updated", "r2", json!({"locked": true, "guestsMuted": true})));
    let r2 = s.rooms.iter().find(|r| r.id == "r2").unwrap();
    assert_eq!((r2.lobby.len(), r2.participants, r2.locked), (1, Some(1), true));
    assert_eq!(s.rooms[0].lobby.len(), 1);
    assert_eq!(s.last_event_id, Some(104));
    press(&mut s, "e");
    assert_eq!(s.screen, Screen::Events);
    let log = text(&render(&s, Theme { color: true }, 80, 24));
    assert!(log.contains("Ida waits in the lobby") && log.contains("1 approved, 0 turned away"), "{log}");
    press(&mut s, "s");
    assert_eq!(s.sort, super::model::Sort::Activity, "s sorts the rooms list only");
}

#[test]
fn sse_parser_splits_events_and_resets() {
    let mut p = SseParser::default();
    let first = p.push(b": heartbeat\n\nid: 7\nevent: guest_left\ndata: {\"id\":7,\"at\":\"2026-03-02T10:30:00Z\",");
    assert!(first.is_empty());
    let items = p.push(
        b"\"type\":\"guest_left\",\"roomId\":\"r1\",\"data\":{\"entryId\":\"e1\"}}\n\nevent: reset\ndata: {}\n\n",
    );
    assert!(matches!(&items[0], StreamItem::Event(e) if e.id == 7 && e.kind == "guest_left"));
    assert!(matches!(items[1], StreamItem::Reset));
    // The header's figures come without an id.
    let items =
        p.push(b"event: instance\ndata: {\"requestsPerSecond\":2.5,\"eventStreams\":1,\"assistantWorkers\":0}\n\n");
    assert!(matches!(&items[..], [StreamItem::Stats(s)] if s.requests_per_second == 2.5 && s.event_streams == 1));
}
