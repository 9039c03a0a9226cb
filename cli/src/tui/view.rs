//! Drawing the monitor: the instance header, the rooms list, a room in detail, the events log, the help
//! overlay and the prompts. Pure functions of the state, so `TestBackend` snapshots pin them down.
//! Somewhat over 500 lines on purpose: the screens share one theme, one status line and one set of cell
//! helpers, and each screen is a short function; split by screen, every part would import the same helpers.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};

use super::model::{Link, Pane, Prompt, Screen, State, duration_text};
use super::wire::Room;

/// Colours, or — with `NO_COLOR` — bold and reverse video only.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Honours `NO_COLOR` (any non-empty value), as <https://no-color.org> asks.
    pub fn from_env() -> Self {
        Self { color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) }
    }
    fn title(self) -> Style {
        if self.color { Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD) } else { Style::new().bold() }
    }
    fn selected(self) -> Style {
        if self.color { Style::new().bg(Color::Blue).fg(Color::White).bold() } else { Style::new().reversed() }
    }
    fn alert(self) -> Style {
        if self.color { Style::new().fg(Color::White).bg(Color::Red).bold() } else { Style::new().reversed().bold() }
    }
    fn ok(self) -> Style {
        if self.color { Style::new().fg(Color::Green) } else { Style::new() }
    }
    fn warn(self) -> Style {
        if self.color { Style::new().fg(Color::Yellow).bold() } else { Style::new().bold() }
    }
    fn dim(self) -> Style {
        if self.color { Style::new().fg(Color::DarkGray) } else { Style::new() }
    }
    fn header_row(self) -> Style {
        if self.color { Style::new().fg(Color::Yellow).bold() } else { Style::new().bold().underlined() }
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, state: &State, theme: Theme) {
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(3), Constraint::Length(1)]).areas(frame.area());
    draw_header(frame, header, state, theme);
    match state.screen {
        Screen::Rooms => draw_rooms(frame, body, state, theme),
        Screen::Detail => draw_detail(frame, body, state, theme),
        Screen::Events => draw_events(frame, body, state, theme),
    }
    draw_footer(frame, footer, state, theme);
    if state.help {
        draw_help(frame, state, theme);
    }
    if let Prompt::Confirm(_) | Prompt::BanReason(_) = &state.prompt {
        draw_prompt(frame, state, theme);
    }
}

fn draw_header(frame: &mut Frame, area: Rect, state: &State, theme: Theme) {
    let i = &state.instance;
    let livekit = if i.livekit_reachable {
        Span::styled("LiveKit ok", theme.ok())
    } else {
        Span::styled("LiveKit unreachable", theme.warn())
    };
    let mut first = vec![Span::styled("confctl monitor", theme.title()), Span::raw(format!("  {}  ", state.server))];
    if !i.version.is_empty() {
        first.push(Span::raw(format!("v{} · {} · ", i.version, i.database)));
        first.push(livekit);
        if area.width >= 100 {
            first.push(Span::raw(format!(
                " · {} assistant worker(s) · {} event stream(s) open",
                i.stats.assistant_workers, i.stats.event_streams
            )));
            if let Some(until) = i.certificate_expires_at {
                let days = (until - state.now).num_days();
                let style = if days < 14 { theme.warn() } else { Style::new() };
                first
                    .push(Span::styled(format!(" · certificate until {} ({days} d)", until.format("%Y-%m-%d")), style));
            }
        }
    }
    let live = state.rooms.iter().filter(|r| r.status == "LIVE").count();
    let waiting: usize = state.rooms.iter().map(|r| r.lobby.len()).sum();
    let people: u32 = state.rooms.iter().filter_map(|r| r.participants).sum();
    let link = match &state.link {
        Link::Connecting => Span::styled(" connecting… ", theme.warn()),
        Link::Live => Span::styled(" connected ", theme.ok()),
        Link::Retrying { attempt, reason } => {
            Span::styled(format!(" disconnected — retrying (attempt {attempt}): {reason} "), theme.alert())
        }
        Link::Refused(why) => Span::styled(format!(" refused: {why} "), theme.alert()),
    };
    let rate = i.stats.requests_per_second;
    let counts = if area.width >= 100 {
        format!("  {live} live room(s) · {people} connected · {waiting} waiting · {rate:.1} req/s")
    } else {
        format!("  {live} live · {people} in · {waiting} waiting · {rate:.1} req/s")
    };
    let mut second = vec![link, Span::raw(counts)];
    let failing = state.rooms.iter().filter(|r| r.assistant_failing()).count();
    if failing > 0 {
        second.push(Span::raw(" · "));
        second.push(Span::styled(format!("{failing} assistant(s) failing"), theme.warn()));
    }
    if state.readonly {
        second.push(Span::styled("  [read-only]", theme.warn()));
    }
    frame.render_widget(Paragraph::new(vec![Line::from(first), Line::from(second)]), area);
}

fn state_text(status: &str) -> &'static str {
    match status {
        "READY" => "ready",
        "LIVE" => "live",
        "ARCHIVED" => "archived",
        _ => "?",
    }
}

fn lecture_time(room: &Room, state: &State) -> String {
    match (room.started_at, room.ended_at) {
        (Some(start), Some(end)) => duration_text((end - start).num_seconds()),
        (Some(start), None) => duration_text((state.now - start).num_seconds()),
        _ => "-".to_owned(),
    }
}

fn longest_wait(room: &Room, state: &State) -> String {
    room.lobby
        .iter()
        .map(|e| (state.now - e.waiting_since).num_seconds())
        .max()
        .map_or_else(|| "-".to_owned(), duration_text)
}

fn sparkline(state: &State, room_id: &str) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let Some(buckets) = state.activity.get(room_id) else { return "▁".repeat(super::model::SPARK_BUCKETS) };
    let max = buckets.iter().copied().max().unwrap_or(0).max(1);
    buckets.iter().map(|&n| BARS[(n as usize * 7).div_ceil(max as usize).min(7)]).collect()
}

fn flags(room: &Room, wide: bool) -> String {
    let mut out = Vec::new();
    if room.locked {
        out.push(if wide { "locked" } else { "L" });
    }
    if room.guests_muted {
        out.push(if wide { "muted" } else { "M" });
    }
    if room.hands > 0 && !wide {
        out.push("H");
    }
    // Narrow screens have no assistant column: a failing assistant still shows.
    if room.assistant_failing() && !wide {
        out.push("A");
    }
    out.join(if wide { "," } else { "" })
}

/// The assistant in the room detail: its state, and why it fails or when it last captioned.
fn assistant_text(room: &Room, state: &State) -> String {
    match (&room.assistant_problem, room.last_caption_at) {
        (Some(problem), _) => format!("assistant FAILING: {problem}"),
        (None, Some(at)) if room.assistant == "captioning" => {
            format!("assistant captioning (last caption {} ago)", duration_text((state.now - at).num_seconds()))
        }
        _ => format!("assistant {}", room.assistant),
    }
}

fn count(n: Option<u32>) -> String {
    n.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

fn draw_rooms(frame: &mut Frame, area: Rect, state: &State, theme: Theme) {
    let rooms = state.visible_rooms();
    let wide = area.width >= 120;
    let title = format!(
        " Rooms ({}) · sort: {}{} ",
        rooms.len(),
        state.sort.label(),
        if state.filter.is_empty() { String::new() } else { format!(" · filter: {}", state.filter) }
    );
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title, theme.title()));
    if rooms.is_empty() {
        let text = if state.rooms.is_empty() {
            "No live rooms. Lectures appear here as hosts create them."
        } else {
            "No room matches the filter (Esc clears it)."
        };
        frame.render_widget(Paragraph::new(text).style(theme.dim()).block(block), area);
        return;
    }
    let (header, widths): (Vec<&str>, Vec<Constraint>) = if wide {
        (
            vec![
                "NAME", "HOST", "STATE", "TIME", "PEOPLE", "PUB", "LOBBY", "WAIT", "HANDS", "FLAGS", "ASSIST",
                "ACTIVITY",
            ],
            vec![
                Constraint::Fill(3),
                Constraint::Fill(2),
                Constraint::Length(8),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(4),
                Constraint::Length(5),
                Constraint::Length(6),
                Constraint::Length(5),
                Constraint::Length(12),
                Constraint::Length(10),
                Constraint::Length(10),
            ],
        )
    } else {
        (
            vec!["NAME", "STATE", "TIME", "PPL", "LOBBY", "WAIT", "FLAGS"],
            vec![
                Constraint::Fill(1),
                Constraint::Length(8),
                Constraint::Length(6),
                Constraint::Length(4),
                Constraint::Length(5),
                Constraint::Length(5),
                Constraint::Length(5),
            ],
        )
    };
    let rows = rooms.iter().map(|r| {
        let lobby = if r.lobby.is_empty() { "-".to_owned() } else { r.lobby.len().to_string() };
        let mut cells: Vec<Cell> = vec![r.name.clone().into()];
        if wide {
            cells.push(r.host.clone().into());
        }
        cells.extend([state_text(&r.status).to_owned(), lecture_time(r, state), count(r.participants)].map(Cell::from));
        if wide {
            cells.push(count(r.publishers).into());
        }
        cells.extend([lobby, longest_wait(r, state)].map(Cell::from));
        if wide {
            cells.push(r.hands.to_string().into());
        }
        cells.push(flags(r, wide).into());
        if wide {
            let style = if r.assistant_failing() { theme.alert() } else { Style::new() };
            cells.push(Cell::from(r.assistant.clone()).style(style));
            cells.push(sparkline(state, &r.id).into());
        }
        let style = if r.lobby.is_empty() { Style::new() } else { theme.warn() };
        Row::new(cells).style(style)
    });
    let selected = state.selected.as_ref().and_then(|id| rooms.iter().position(|r| &r.id == id));
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header_row()))
        .row_highlight_style(theme.selected())
        .highlight_symbol("> ")
        .block(block);
    let mut ts = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut ts);
}

fn draw_detail(frame: &mut Frame, area: Rect, state: &State, theme: Theme) {
    let Some(detail) = &state.detail else {
        frame.render_widget(Paragraph::new("Loading the room…").block(Block::default().borders(Borders::ALL)), area);
        return;
    };
    let r = &detail.room;
    let [info, lists, events] =
        Layout::vertical([Constraint::Length(4), Constraint::Fill(2), Constraint::Fill(1)]).areas(area);
    let summary = vec![
        Line::from(vec![
            Span::styled(r.name.clone(), theme.title()),
            Span::raw(format!("  host {} · {} · {}", r.host, state_text(&r.status), lecture_time(r, state))),
        ]),
        Line::from({
            let mut parts = vec![
                format!("{} connected", count(r.participants)),
                format!("{} publishing", count(r.publishers)),
                format!("{} waiting", r.lobby.len()),
                format!("{} hand(s)", r.hands),
            ];
            if r.locked {
                parts.push("LOCKED".into());
            }
            if r.guests_muted {
                parts.push("GUESTS MUTED".into());
            }
            parts.join(" · ")
        }),
        // A line of its own: why the assistant fails can take most of it.
        Line::styled(assistant_text(r, state), if r.assistant_failing() { theme.warn() } else { Style::new() }),
    ];
    frame.render_widget(
        Paragraph::new(summary).wrap(Wrap { trim: true }).block(Block::default().borders(Borders::BOTTOM)),
        info,
    );
    let [left, right] = if lists.width >= 100 {
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(lists)
    } else {
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(lists)
    };
    let focus = |pane: Pane, title: String| {
        let style = if state.pane == pane { theme.title() } else { theme.dim() };
        Block::default().borders(Borders::ALL).title(Span::styled(title, style))
    };
    let lobby_rows = r
        .lobby
        .iter()
        .map(|e| Row::new(vec![e.display_name.clone(), duration_text((state.now - e.waiting_since).num_seconds())]));
    let lobby = Table::new(lobby_rows, [Constraint::Fill(1), Constraint::Length(8)])
        .header(Row::new(vec!["WAITING", "FOR"]).style(theme.header_row()))
        .row_highlight_style(theme.selected())
        .highlight_symbol("> ")
        .block(focus(Pane::Lobby, format!(" Lobby ({}) ", r.lobby.len())));
    let mut ts = TableState::default()
        .with_selected((state.pane == Pane::Lobby && !r.lobby.is_empty()).then_some(state.detail_cursor));
    frame.render_stateful_widget(lobby, left, &mut ts);

    let hands: Vec<&str> = detail.hands.iter().map(|h| h.identity.as_str()).collect();
    match &detail.participants {
        Some(people) => {
            let rows = people.iter().map(|p| {
                let since =
                    p.joined_at.map_or_else(|| "-".to_owned(), |t| duration_text((state.now - t).num_seconds()));
                let mic = if p.audio_muted { "muted" } else { "mic on" };
                let hand = if hands.contains(&p.identity.as_str()) { "✋" } else { "" };
                Row::new(vec![
                    p.name.clone(),
                    p.role.clone().unwrap_or_else(|| "-".into()),
                    since,
                    mic.to_owned(),
                    hand.to_owned(),
                ])
            });
            let table = Table::new(
                rows,
                [
                    Constraint::Fill(1),
                    Constraint::Length(9),
                    Constraint::Length(6),
                    Constraint::Length(6),
                    Constraint::Length(2),
                ],
            )
            .header(Row::new(vec!["NAME", "ROLE", "IN", "MIC", ""]).style(theme.header_row()))
            .row_highlight_style(theme.selected())
            .highlight_symbol("> ")
            .block(focus(Pane::Participants, format!(" Participants ({}) ", people.len())));
            let mut ts = TableState::default()
                .with_selected((state.pane == Pane::Participants && !people.is_empty()).then_some(state.detail_cursor));
            frame.render_stateful_widget(table, right, &mut ts);
        }
        None => frame.render_widget(
            Paragraph::new("The media server did not answer: participants unknown.")
                .style(theme.warn())
                .block(focus(Pane::Participants, " Participants ".into())),
            right,
        ),
    }
    let lines: Vec<Line> = detail
        .recent_events
        .iter()
        .rev()
        .map(|e| {
            Line::from(vec![Span::styled(e.at.format("%H:%M:%S ").to_string(), theme.dim()), Span::raw(e.summary())])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Recent events ")),
        events,
    );
}

fn draw_events(frame: &mut Frame, area: Rect, state: &State, theme: Theme) {
    let events = state.visible_events();
    let title = format!(
        " Events ({}){} ",
        events.len(),
        if state.filter.is_empty() { String::new() } else { format!(" · filter: {}", state.filter) }
    );
    let wide = area.width >= 120;
    let lines: Vec<Line> = events
        .iter()
        .rev()
        .skip(state.events_scroll)
        .map(|e| {
            let room = e.room_id.as_deref().map(|id| state.room_name(id)).unwrap_or_default();
            let room: String = room.chars().take(if wide { 30 } else { 16 }).collect();
            let width = if wide { 30 } else { 16 };
            Line::from(vec![
                Span::styled(e.at.format("%H:%M:%S ").to_string(), theme.dim()),
                Span::raw(format!("{room:<width$} ")),
                Span::raw(e.summary()),
            ])
        })
        .collect();
    let text = if lines.is_empty() { vec![Line::styled("No events yet.", theme.dim())] } else { lines };
    frame.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(Span::styled(title, theme.title()))),
        area,
    );
}

/// The keys valid on a screen, as (key, what it does).
pub fn keys(state: &State) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![("↑/↓ j/k", "move"), ("/", "filter (Esc clears)"), ("r", "reload from the server")];
    match state.screen {
        Screen::Rooms => {
            out.extend([("Enter", "open the room"), ("s", "cycle the sort order"), ("e", "events log")]);
            if !state.readonly {
                out.extend([
                    ("A", "approve everyone waiting"),
                    ("m / u", "mute all / unmute all guests"),
                    ("l", "lock or unlock"),
                    ("x", "end the lecture"),
                ]);
            }
        }
        Screen::Detail => {
            out.extend([("Tab", "lobby ↔ participants"), ("Esc/Backspace", "back to the rooms")]);
            if !state.readonly {
                out.extend([
                    ("a / d", "approve / reject the selected guest"),
                    ("A", "approve everyone waiting"),
                    ("K / B", "kick / ban the selected participant"),
                    ("m / u", "mute all / unmute all guests"),
                    ("l", "lock or unlock"),
                    ("x", "end the lecture"),
                ]);
            }
        }
        Screen::Events => out.push(("Esc/Backspace", "back to the rooms")),
    }
    out.extend([("?", "this help"), ("q", "quit")]);
    out
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn draw_help(frame: &mut Frame, state: &State, theme: Theme) {
    let keys = keys(state);
    let lines: Vec<Line> = keys
        .iter()
        .map(|(k, what)| Line::from(vec![Span::styled(format!("{k:>14}  "), theme.title()), Span::raw(*what)]))
        .collect();
    let area = centered(frame.area(), 60, u16::try_from(lines.len()).unwrap_or(20) + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Keys (? or Esc closes) ")),
        area,
    );
}

fn draw_prompt(frame: &mut Frame, state: &State, theme: Theme) {
    let (title, lines) = match &state.prompt {
        Prompt::Confirm(action) => (
            " Confirm ",
            vec![
                Line::from(action.question(&state.room_name(action.room()))),
                Line::styled("y: yes   n/Esc: no", theme.dim()),
            ],
        ),
        Prompt::BanReason(super::model::Action::Ban { reason, name, .. }) => (
            " Ban ",
            vec![
                Line::from(format!("Reason for banning {name}: {reason}_")),
                Line::styled("Enter: next   Esc: cancel", theme.dim()),
            ],
        ),
        _ => return,
    };
    let area = centered(frame.area(), 64, 4);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(Borders::ALL).title(Span::styled(title, theme.warn()))),
        area,
    );
}

fn draw_footer(frame: &mut Frame, area: Rect, state: &State, theme: Theme) {
    let line = if state.prompt == Prompt::Filter {
        Line::from(vec![Span::styled("/", theme.title()), Span::raw(format!("{}_", state.filter))])
    } else if let Some(message) = &state.message {
        Line::from(Span::styled(message.clone(), theme.warn()))
    } else {
        let hint = match state.screen {
            Screen::Rooms => "Enter open · / filter · s sort · e events · ? help · q quit",
            Screen::Detail => "Tab pane · a approve · d reject · Esc back · ? help · q quit",
            Screen::Events => "↑/↓ scroll · / filter · Esc back · ? help · q quit",
        };
        let hint = if state.readonly && state.screen == Screen::Detail {
            "Tab pane · Esc back · ? help · q quit"
        } else {
            hint
        };
        Line::from(Span::styled(hint, theme.dim()))
    };
    frame.render_widget(Paragraph::new(line), area);
}
