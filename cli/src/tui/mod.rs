//! `confctl admin monitor`: a live terminal view of every room (ratatui + crossterm), k9s/htop style keys,
//! fed by one snapshot per (re)connect and the admin event stream.

pub mod client;
pub mod model;
pub mod view;
pub mod wire;

#[cfg(test)]
mod tests;

use std::io::Stdout;
use std::time::Duration;

use crossterm::event::{self, Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::execute;
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

use client::{Client, ClientError, StreamItem};
use model::{Action, Link, Prompt, Screen, State};
use view::Theme;
use wire::{Detail, Snapshot};

/// What the main loop reacts to.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Redraw,
    Tick,
    Snapshot(Box<Snapshot>),
    Detail(Box<Detail>),
    Event(Box<wire::AdminEvent>),
    Stats(wire::Stats),
    Down { attempt: u32, reason: String },
    Refused(String),
    Done(String),
    Failed(String),
}

/// Work for the request task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Reload,
    Detail(String),
    Act(Action),
}

/// What a key press asks of the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Nothing,
    Quit,
    Send(Vec<Cmd>),
}

/// Applies one key press to the state. Pure: the loop sends the commands.
pub fn handle_key(state: &mut State, key: KeyEvent) -> Outcome {
    if key.kind == KeyEventKind::Release {
        return Outcome::Nothing;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Outcome::Quit;
    }
    match state.prompt.clone() {
        Prompt::Filter => {
            match key.code {
                KeyCode::Esc => {
                    state.filter.clear();
                    state.prompt = Prompt::None;
                }
                KeyCode::Enter => state.prompt = Prompt::None,
                KeyCode::Backspace => {
                    state.filter.pop();
                }
                KeyCode::Char(c) => state.filter.push(c),
                _ => {}
            }
            state.move_cursor(0);
            return Outcome::Nothing;
        }
        Prompt::Confirm(action) => {
            state.prompt = Prompt::None;
            return match key.code {
                KeyCode::Char('y' | 'Y') => {
                    state.message = Some("working…".into());
                    Outcome::Send(vec![Cmd::Act(action)])
                }
                _ => {
                    state.message = Some("cancelled".into());
                    Outcome::Nothing
                }
            };
        }
        Prompt::BanReason(Action::Ban { room, identity, name, mut reason }) => {
            match key.code {
                KeyCode::Esc => state.prompt = Prompt::None,
                KeyCode::Enter => state.prompt = Prompt::Confirm(Action::Ban { room, identity, name, reason }),
                KeyCode::Backspace => {
                    reason.pop();
                    state.prompt = Prompt::BanReason(Action::Ban { room, identity, name, reason });
                }
                KeyCode::Char(c) => {
                    reason.push(c);
                    state.prompt = Prompt::BanReason(Action::Ban { room, identity, name, reason });
                }
                _ => state.prompt = Prompt::BanReason(Action::Ban { room, identity, name, reason }),
            }
            return Outcome::Nothing;
        }
        Prompt::BanReason(_) | Prompt::None => {}
    }
    if state.help {
        if matches!(key.code, KeyCode::Char('?' | 'q') | KeyCode::Esc | KeyCode::Backspace) {
            state.help = false;
        }
        return Outcome::Nothing;
    }
    state.message = None;
    match key.code {
        KeyCode::Char('q') => return Outcome::Quit,
        KeyCode::Char('?') => state.help = true,
        KeyCode::Char('/') => state.prompt = Prompt::Filter,
        KeyCode::Down | KeyCode::Char('j') => state.move_cursor(1),
        KeyCode::Up | KeyCode::Char('k') => state.move_cursor(-1),
        KeyCode::PageDown => state.move_cursor(10),
        KeyCode::PageUp => state.move_cursor(-10),
        KeyCode::Char('r') => {
            let mut cmds = vec![Cmd::Reload];
            if let (Screen::Detail, Some(id)) = (state.screen, state.selected.clone()) {
                cmds.push(Cmd::Detail(id));
            }
            state.message = Some("reloading…".into());
            return Outcome::Send(cmds);
        }
        KeyCode::Esc if !state.filter.is_empty() => state.filter.clear(),
        KeyCode::Esc | KeyCode::Backspace => {
            state.screen = Screen::Rooms;
            state.detail = None;
        }
        KeyCode::Char('s') if state.screen == Screen::Rooms => state.sort = state.sort.next(),
        KeyCode::Char('e') if state.screen != Screen::Events => {
            state.screen = Screen::Events;
            state.events_scroll = 0;
        }
        KeyCode::Enter if state.screen == Screen::Rooms => {
            if let Some(id) = state.selected.clone().filter(|id| state.rooms.iter().any(|r| &r.id == id)) {
                state.screen = Screen::Detail;
                state.detail = None;
                state.detail_cursor = 0;
                state.pane = model::Pane::Lobby;
                return Outcome::Send(vec![Cmd::Detail(id)]);
            }
        }
        KeyCode::Tab if state.screen == Screen::Detail => state.switch_pane(),
        KeyCode::Char(c) if !state.readonly && state.screen != Screen::Events => {
            if let Some(action) = action_for(state, c) {
                state.prompt = match action {
                    Action::Ban { .. } => Prompt::BanReason(action),
                    other => Prompt::Confirm(other),
                };
            }
        }
        _ => {}
    }
    Outcome::Nothing
}

/// The action a letter asks for on the current screen, if it applies.
fn action_for(state: &State, c: char) -> Option<Action> {
    let room = state.selected_room()?;
    let id = room.id.clone();
    let detail = state.screen == Screen::Detail;
    Some(match c {
        'A' if !room.lobby.is_empty() => Action::ApproveAll { room: id },
        'm' => Action::MuteAll { room: id },
        'u' => Action::UnmuteAll { room: id },
        'l' => Action::Lock { room: id, locked: !room.locked },
        'x' if room.status == "LIVE" => Action::End { room: id },
        'a' if detail => {
            let e = state.cursor_entry()?;
            Action::Approve { room: id, entry: e.id.clone(), name: e.display_name.clone() }
        }
        'd' if detail => {
            let e = state.cursor_entry()?;
            Action::Reject { room: id, entry: e.id.clone(), name: e.display_name.clone() }
        }
        'K' if detail => {
            let p = state.cursor_participant()?;
            Action::Kick { room: id, identity: p.identity.clone(), name: p.name.clone() }
        }
        'B' if detail => {
            let p = state.cursor_participant()?;
            Action::Ban { room: id, identity: p.identity.clone(), name: p.name.clone(), reason: String::new() }
        }
        _ => return None,
    })
}

/// Applies a message from the network or the clock; returns commands to send.
pub fn handle_msg(state: &mut State, msg: Msg) -> Vec<Cmd> {
    match msg {
        Msg::Key(_) | Msg::Redraw => {}
        Msg::Tick => state.now = chrono::Utc::now(),
        Msg::Snapshot(snap) => {
            state.apply_snapshot(*snap);
            if state.message.as_deref() == Some("reloading…") {
                state.message = None;
            }
            // A reconnect keeps the admin where they were: the open room is loaded again.
            if let (Screen::Detail, Some(id)) = (state.screen, state.selected.clone()) {
                return vec![Cmd::Detail(id)];
            }
        }
        Msg::Detail(detail) => {
            if state.screen == Screen::Detail && state.selected.as_deref() == Some(detail.room.id.as_str()) {
                state.apply_detail(*detail);
            }
        }
        Msg::Event(event) => state.apply_event(*event),
        Msg::Stats(stats) => state.instance.stats = stats,
        Msg::Down { attempt, reason } => state.link = Link::Retrying { attempt, reason },
        Msg::Refused(why) => state.link = Link::Refused(why),
        Msg::Done(text) | Msg::Failed(text) => state.message = Some(text),
    }
    Vec::new()
}

/// Keeps a snapshot and the event stream going, reconnecting with back-off, until the receiver is gone.
async fn network(client: Client, tx: mpsc::UnboundedSender<Msg>) {
    let mut attempt = 0u32;
    loop {
        if tx.is_closed() {
            return;
        }
        // The stream starts right after the snapshot's newest event, so nothing falls between them.
        let last_id = match client.snapshot().await {
            Ok(snap) => {
                let id = Some(snap.last_event_id);
                let _ = tx.send(Msg::Snapshot(Box::new(snap)));
                id
            }
            Err(err) => {
                if gave_up(&tx, err, &mut attempt).await {
                    return;
                }
                continue;
            }
        };
        let mut reset = false;
        let result = client
            .stream(last_id, |item| match item {
                StreamItem::Open => {
                    attempt = 0;
                    true
                }
                StreamItem::Event(event) => tx.send(Msg::Event(event)).is_ok(),
                StreamItem::Stats(stats) => tx.send(Msg::Stats(stats)).is_ok(),
                StreamItem::Reset => {
                    reset = true;
                    false
                }
            })
            .await;
        if reset {
            continue;
        }
        match result {
            Ok(()) => return,
            Err(err) => {
                if gave_up(&tx, err, &mut attempt).await {
                    return;
                }
            }
        }
    }
}

/// Reports a failed snapshot or stream to the screen. A refusal (bad or revoked token) ends the loop: `true`.
/// Anything else is a server that went away: say so, wait the back-off, and try again (`false`).
async fn gave_up(tx: &mpsc::UnboundedSender<Msg>, err: ClientError, attempt: &mut u32) -> bool {
    if let ClientError::Refused { code, message } = err {
        let _ = tx.send(Msg::Refused(format!("{message} ({code})")));
        return true;
    }
    *attempt += 1;
    let _ = tx.send(Msg::Down { attempt: *attempt, reason: err.to_string() });
    tokio::time::sleep(backoff(*attempt)).await;
    false
}

/// 0.5 s, 1 s, 2 s, then every 3 s: a restarted server is found within seconds, a dead one is not hammered.
fn backoff(attempt: u32) -> Duration {
    match attempt {
        0 | 1 => Duration::from_millis(500),
        2 => Duration::from_secs(1),
        3 => Duration::from_secs(2),
        _ => Duration::from_secs(3),
    }
}

/// Runs the requests the admin's keys ask for.
async fn requests(client: Client, mut rx: mpsc::UnboundedReceiver<Cmd>, tx: mpsc::UnboundedSender<Msg>) {
    while let Some(cmd) = rx.recv().await {
        let msg = match cmd {
            Cmd::Reload => match client.snapshot().await {
                Ok(snap) => Msg::Snapshot(Box::new(snap)),
                Err(err) => Msg::Failed(format!("reload failed: {err}")),
            },
            Cmd::Detail(id) => match client.detail(&id).await {
                Ok(detail) => Msg::Detail(Box::new(detail)),
                Err(err) => Msg::Failed(format!("cannot load the room: {err}")),
            },
            Cmd::Act(action) => {
                let (path, body) = action.request();
                match client.act(&path, &body).await {
                    Ok(_) => Msg::Done(format!("done: {}", action.question("the room").trim_end_matches('?'))),
                    Err(err) => Msg::Failed(format!("failed: {err}")),
                }
            }
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(std::io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

/// The ratatui templates' panic hook: put the terminal back before the panic message is printed.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
}

fn setup_terminal() -> std::io::Result<Terminal<CrosstermBackend<Stdout>>> {
    install_panic_hook();
    enable_raw_mode()?;
    execute!(std::io::stdout(), EnterAlternateScreen)?;
    Terminal::new(CrosstermBackend::new(std::io::stdout()))
}

/// Runs the monitor until `q`, Ctrl-C or a terminal failure.
pub async fn run(client: Client, readonly: bool) -> Result<(), String> {
    let mut terminal = setup_terminal().map_err(|e| {
        restore_terminal();
        format!("cannot set up the terminal: {e}")
    })?;
    let result = event_loop(&mut terminal, client, readonly).await;
    restore_terminal();
    result
}

async fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    client: Client,
    readonly: bool,
) -> Result<(), String> {
    let theme = Theme::from_env();
    let mut state = State::new(client.base(), readonly);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let net = tokio::spawn(network(client.clone(), tx.clone()));
    let req = tokio::spawn(requests(client, cmd_rx, tx.clone()));
    // Keys come from a thread of their own: crossterm's read blocks.
    let keys = tx.clone();
    std::thread::spawn(move || {
        loop {
            match event::read() {
                Ok(TermEvent::Key(key)) => {
                    if keys.send(Msg::Key(key)).is_err() {
                        return;
                    }
                }
                Ok(TermEvent::Resize(..)) => {
                    if keys.send(Msg::Redraw).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    let mut ticks = 0u32;
    let result = loop {
        if let Err(err) = terminal.draw(|f| view::draw(f, &state, theme)) {
            break Err(format!("cannot draw: {err}"));
        }
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            _ = clock.tick() => Some(Msg::Tick),
            _ = tokio::signal::ctrl_c() => break Ok(()),
        };
        let Some(msg) = msg else { break Ok(()) };
        let cmds = match msg {
            Msg::Key(key) => match handle_key(&mut state, key) {
                Outcome::Quit => break Ok(()),
                Outcome::Nothing => Vec::new(),
                Outcome::Send(cmds) => cmds,
            },
            Msg::Tick => {
                ticks += 1;
                if ticks % 30 == 0 {
                    state.shift_activity();
                }
                handle_msg(&mut state, Msg::Tick)
            }
            other => handle_msg(&mut state, other),
        };
        for cmd in cmds {
            let _ = cmd_tx.send(cmd);
        }
    };
    net.abort();
    req.abort();
    result
}
