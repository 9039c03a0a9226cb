//! One room, start to end: join as the assistant (and rejoin with backoff whenever the connection or the media
//! server goes away), caption every speaker through the speech-to-text provider, tell confctl how that goes
//! (the monitor's captioning / failing), and once the lecture has ended, write the transcript and the summary
//! as the lecture's artifact.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use livekit_protocol as proto;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::Agent;
use super::api::{ApiError, Caption, Lecture, Report};
use super::audio::SpeakerAudio;
use super::stt::{AudioEvent, Transcribed};
use crate::artifacts::health::REPORT_EVERY;
use crate::livekit::subscriber::{AudioTrack, RoomConnection, RoomEvent, Roster};

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A connection that lasted this long was fine: the next failure starts the backoff afresh.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How long speakers get to finish their last utterance when the assistant leaves.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts for a final caption, the context and the artifact (transient failures only).
const ATTEMPTS: u32 = 8;

/// Why a session stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The lecture is over: finish captions, then write the artifact.
    Ended,
    /// The worker is shutting down (or the room moved to another worker): finish captions, no artifact.
    Leave,
}

/// Runs the room until `stop` says otherwise (or confctl says the lecture is over).
pub async fn run(agent: Arc<Agent>, room: Lecture, mut stop: watch::Receiver<Option<Stop>>) {
    // Every agent route addresses the lecture; the logs still say "room" for the LiveKit room it is in.
    let room_id = room.lecture_id.clone();
    let (captions, poster) = caption_poster(agent.clone(), room_id.clone());
    let roster = Arc::new(Mutex::new(Roster::default()));
    let mut time_base = room.started_at.map(|t| t.timestamp_millis());
    let mut speakers: JoinSet<()> = JoinSet::new();
    let mut backoff = MIN_BACKOFF;
    let reason = 'session: loop {
        let attempt_started = tokio::time::Instant::now();
        let joined = match agent.api.join_token(&room_id).await {
            Ok(token) => {
                RoomConnection::join(&token.livekit_url, &token.token, agent.udp_addr).await.map_err(|e| e.to_string())
            }
            Err(ApiError::Gone) => break Stop::Ended,
            Err(err @ (ApiError::NotFound(_) | ApiError::Unauthorized(_) | ApiError::Rejected(_))) => {
                tracing::warn!(room = %room_id, error = %err, "cannot join the room");
                Err(err.to_string())
            }
            Err(err) => Err(err.to_string()),
        };
        let (connection, mut events) = match joined {
            Ok(joined) => joined,
            Err(error) => {
                tracing::warn!(room = %room_id, %error, retry_in = ?backoff, "joining the room failed");
                report(&agent, &room_id, Some(format!("cannot join the room: {error}")));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    s = wait_stop(&mut stop) => break 'session s,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        tracing::info!(room = %room_id, "the assistant joined the room");
        let base = *time_base.get_or_insert_with(|| connection.created_at_ms.unwrap_or_else(crate::time::now_ms));
        // Speakers of this connection by track sid: (participant sid, "finish your utterance").
        let mut running: HashMap<String, (String, watch::Sender<bool>)> = HashMap::new();
        // The first tick is now: confctl hears at once that the assistant is in.
        let mut reports = tokio::time::interval(REPORT_EVERY);
        let outcome = loop {
            tokio::select! {
                s = wait_stop(&mut stop) => break Some(s),
                _ = reports.tick() => report(&agent, &room_id, agent.problem()),
                event = events.recv() => match event {
                    Some(RoomEvent::Participants(participants)) => {
                        // A speaker who left, or a track no longer published, is done: its last utterance is
                        // transcribed now rather than when the connection ends.
                        for p in &participants {
                            let gone = p.state == proto::participant_info::State::Disconnected as i32;
                            running.retain(|track, (participant, finish)| {
                                let ended = *participant == p.sid && (gone || !p.tracks.iter().any(|t| t.sid == *track));
                                if ended {
                                    let _ = finish.send(true);
                                }
                                !ended
                            });
                        }
                        roster.lock().unwrap_or_else(PoisonError::into_inner).update(participants);
                    }
                    Some(RoomEvent::Track(track)) => {
                        let speaker = Speaker {
                            agent: agent.clone(),
                            roster: roster.clone(),
                            captions: captions.clone(),
                            language: room.language.clone(),
                            time_base: base,
                        };
                        let (finish, finishing) = watch::channel(false);
                        running.insert(track.track_sid.clone(), (track.participant_sid.clone(), finish));
                        speakers.spawn(speaker.run(track, finishing));
                    }
                    Some(RoomEvent::Closed(reason)) => {
                        // A deleted room is usually a lecture that just ended: the rejoin's token says.
                        tracing::info!(room = %room_id, %reason, "the connection to the room ended; rejoining");
                        break None;
                    }
                    None => break None,
                },
                Some(_) = speakers.join_next(), if !speakers.is_empty() => {}
            }
        };
        for (_, (_, finish)) in running {
            let _ = finish.send(true);
        }
        connection.leave().await;
        if let Some(s) = outcome {
            break s;
        }
        if attempt_started.elapsed() >= STABLE_AFTER {
            backoff = MIN_BACKOFF;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            s = wait_stop(&mut stop) => break 'session s,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    };
    // Every speaker's last utterance is transcribed and posted before the transcript is read back.
    if tokio::time::timeout(FLUSH_TIMEOUT, async { while speakers.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!(room = %room_id, "speech-to-text did not finish in time; the last captions may be missing");
        speakers.abort_all();
    }
    drop(captions);
    let _ = poster.await;
    tracing::info!(room = %room_id, ?reason, "the assistant left the room");
    if reason == Stop::Ended {
        write_artifact(&agent, &room).await;
    }
}

/// Tells confctl how the assistant is doing in the lecture, without holding up the session: a report that
/// does not arrive is made up for by the next one.
fn report(agent: &Arc<Agent>, lecture_id: &str, problem: Option<String>) {
    let (agent, lecture_id) = (agent.clone(), lecture_id.to_owned());
    tokio::spawn(async move {
        if let Err(err) = agent.api.report(&lecture_id, &Report { problem }).await {
            tracing::debug!(lecture = %lecture_id, error = %err, "a status report did not reach confctl");
        }
    });
}

async fn wait_stop(stop: &mut watch::Receiver<Option<Stop>>) -> Stop {
    loop {
        if let Some(s) = *stop.borrow_and_update() {
            return s;
        }
        if stop.changed().await.is_err() {
            return Stop::Leave;
        }
    }
}

/// One remote microphone: its audio path, its speech-to-text stream, and its captions.
struct Speaker {
    agent: Arc<Agent>,
    roster: Arc<Mutex<Roster>>,
    captions: mpsc::UnboundedSender<Caption>,
    language: String,
    /// Unix ms that caption times count from.
    time_base: i64,
}

impl Speaker {
    async fn run(self, mut track: AudioTrack, mut closing: watch::Receiver<bool>) {
        let mut audio = match SpeakerAudio::new() {
            Ok(a) => a,
            Err(err) => {
                tracing::error!(error = %err, "cannot process a speaker's audio");
                return;
            }
        };
        let (audio_tx, audio_rx) = mpsc::channel::<AudioEvent>(2_000);
        let (text_tx, mut text_rx) = mpsc::channel::<Transcribed>(100);
        let stt = self.agent.stt.clone();
        let language = self.language.clone();
        let transcriber = tokio::spawn(async move { stt.transcribe(&language, audio_rx, text_tx).await });
        let participant_sid = track.participant_sid.clone();
        let speaker_of = {
            let roster = self.roster.clone();
            // Remembered once known: the final caption may come after the speaker has left.
            let mut known: Option<(String, String)> = None;
            move || -> (String, String) {
                if known.is_none() {
                    known = roster.lock().unwrap_or_else(PoisonError::into_inner).speaker(&participant_sid);
                }
                known.clone().unwrap_or_else(|| (participant_sid.clone(), String::new()))
            }
        };
        let forwarder = {
            let (captions, language, base, provider) =
                (self.captions.clone(), self.language.clone(), self.time_base, self.agent.stt.provider());
            let mut speaker_of = speaker_of;
            tokio::spawn(async move {
                while let Some(t) = text_rx.recv().await {
                    let (identity, name) = speaker_of();
                    let caption = Caption {
                        segment_id: t.segment_id,
                        speaker_identity: identity,
                        speaker_name: name,
                        text: t.text,
                        is_final: t.is_final,
                        start_ms: (t.start_ms - base).max(0),
                        end_ms: (t.end_ms - base).max(0),
                        language: language.clone(),
                        provider: Some(provider.to_owned()),
                    };
                    if captions.send(caption).is_err() {
                        break;
                    }
                }
            })
        };
        tracing::debug!(track = %track.track_sid, "receiving a speaker");
        let mut events = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                packet = track.packets.recv() => match packet {
                    Some(p) => audio.push_rtp(p.sequence, p.timestamp, &p.payload, p.arrival_ms, &mut events),
                    None => break,
                },
                _ = tick.tick() => audio.tick(crate::time::now_ms(), &mut events),
                changed = closing.changed() => if changed.is_err() || *closing.borrow() { break },
            }
            for event in events.drain(..) {
                if audio_tx.send(event).await.is_err() {
                    break;
                }
            }
        }
        audio.finish(&mut events);
        for event in events.drain(..) {
            let _ = audio_tx.send(event).await;
        }
        drop(audio_tx);
        match transcriber.await {
            Ok(Err(err)) => tracing::warn!(error = %format!("{err:#}"), "speech-to-text stopped"),
            Err(err) => tracing::error!(error = %err, "speech-to-text task failed"),
            Ok(Ok(())) => {}
        }
        let _ = forwarder.await;
    }
}

/// Posts captions in order. Interim captions are dropped when a newer one for the same segment is waiting
/// (only the latest text matters); final ones are retried, since they make the transcript.
fn caption_poster(agent: Arc<Agent>, room_id: String) -> (mpsc::UnboundedSender<Caption>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Caption>();
    let task = tokio::spawn(async move {
        let mut waiting: Vec<Caption> = Vec::new();
        loop {
            if waiting.is_empty() {
                match rx.recv().await {
                    Some(c) => waiting.push(c),
                    None => return,
                }
            }
            while let Ok(c) = rx.try_recv() {
                waiting.push(c);
            }
            let caption = waiting.remove(0);
            let superseded = !caption.is_final && waiting.iter().any(|w| w.segment_id == caption.segment_id);
            if superseded {
                continue;
            }
            let attempts = if caption.is_final { ATTEMPTS } else { 1 };
            let posted = retry(attempts, || agent.api.post_caption(&room_id, &caption)).await;
            if let Err(err) = posted {
                tracing::warn!(room = %room_id, error = %err, is_final = caption.is_final, "a caption could not be posted");
            }
        }
    });
    (tx, task)
}

/// Retries transient failures with exponential backoff.
async fn retry<T, F, Fut>(attempts: u32, mut call: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let mut delay = MIN_BACKOFF;
    let mut n = 0;
    loop {
        n += 1;
        match call().await {
            Err(err) if err.is_transient() && n < attempts => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
            other => return other,
        }
    }
}

/// After the lecture: the stored transcript as text and WebVTT, the summary, saved as the artifact.
async fn write_artifact(agent: &Agent, room: &Lecture) {
    let room_id = &room.lecture_id;
    let context = match retry(ATTEMPTS, || agent.api.context(room_id)).await {
        Ok(c) => c,
        Err(err) => {
            tracing::error!(room = %room_id, error = %err, "cannot read the transcript back: no artifact written");
            return;
        }
    };
    let artifact = super::artifact_for(&agent.summariser, &context, &room.language).await;
    match retry(ATTEMPTS, || agent.api.put_artifact(room_id, &artifact)).await {
        Ok(()) => {
            tracing::info!(room = %room_id, segments = context.segments.len(), status = %artifact.status, "lecture artifact saved")
        }
        Err(err) => tracing::error!(room = %room_id, error = %err, "the lecture artifact could not be saved"),
    }
}
