//! The assistant as a LiveKit participant (the media side, beside this module's server API): LiveKit's own
//! signalling client (`livekit-signaling`) with a pure-Rust WebRTC subscriber (webrtc-rs). Subscribe-only:
//! one peer connection on which LiveKit offers the audio tracks the assistant asks for, no publisher, no
//! data channels of its own (captions go out through confctl). The official `livekit` client crate cannot
//! be built here: its WebRTC build downloads a prebuilt binary.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use livekit_protocol as proto;
use livekit_signaling::{SignalClient, SignalEvent, SignalOptions};
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, Registry, register_default_interceptors,
};

/// The signalling protocol version confctl speaks: subscriber-primary dual peer connections on `/rtc`,
/// without the single-connection and negotiated-data-channel features of later versions.
const PROTOCOL_VERSION: u32 = 16;
/// RTP packets buffered per track between the WebRTC driver and the audio path (10 s of 20 ms packets).
const TRACK_QUEUE: usize = 500;

/// One RTP packet of a remote audio track.
#[derive(Debug, Clone)]
pub struct RtpPacket {
    pub sequence: u16,
    pub timestamp: u32,
    pub payload: Vec<u8>,
    /// Unix ms when it was received.
    pub arrival_ms: i64,
}

/// A remote audio track being received.
#[derive(Debug)]
pub struct AudioTrack {
    pub participant_sid: String,
    pub track_sid: String,
    /// Closes when the track ends or the connection closes.
    pub packets: mpsc::Receiver<RtpPacket>,
}

/// What happens in the room, as the session needs it.
#[derive(Debug)]
pub enum RoomEvent {
    /// Current information about these participants (complete records; `state` DISCONNECTED means gone).
    Participants(Vec<proto::ParticipantInfo>),
    /// A subscribed audio track started receiving.
    Track(AudioTrack),
    /// The connection is over (server leave, signalling lost, media failed); reconnect with a new token.
    Closed(String),
}

/// A live connection to a LiveKit room.
pub struct RoomConnection {
    /// When LiveKit created the room (Unix ms), if it said.
    pub created_at_ms: Option<i64>,
    signal: Arc<SignalClient>,
    pc: Arc<dyn PeerConnection>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RoomConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomConnection").finish_non_exhaustive()
    }
}

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("LiveKit refused the join: {0}")]
    Signal(#[from] livekit_signaling::SignalError),
    #[error("WebRTC: {0}")]
    WebRtc(String),
    #[error("{0}")]
    Protocol(String),
}

fn webrtc_err(e: impl std::fmt::Display) -> JoinError {
    JoinError::WebRtc(e.to_string())
}

impl RoomConnection {
    /// Joins the room at `url` with a subscribe-only token; `udp_addr` is where media is received.
    pub async fn join(
        url: &str,
        token: &str,
        udp_addr: SocketAddr,
    ) -> Result<(Self, mpsc::UnboundedReceiver<RoomEvent>), JoinError> {
        let mut options = SignalOptions::default();
        // Tracks are subscribed one by one (audio only), so LiveKit never forwards video to the assistant.
        options.auto_subscribe = false;
        options.protocol_version = PROTOCOL_VERSION;
        options.client_capabilities = Vec::new();
        options.single_peer_connection = false;
        // Self-hosted LiveKit has no regions; LiveKit Cloud's failover is not worth a second retry loop.
        options.region_failover = false;
        let (signal, join, signal_events) = SignalClient::connect(url, token, options, None).await?;
        let signal = Arc::new(signal);
        if !join.subscriber_primary {
            signal.close().await;
            return Err(JoinError::Protocol(
                "LiveKit did not make the subscriber connection primary, which a listen-only participant needs \
                 (is the token's canPublish false?)"
                    .into(),
            ));
        }

        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (candidates_tx, candidates_rx) = mpsc::unbounded_channel();
        let handler = Arc::new(Handler { events: events_tx.clone(), candidates: candidates_tx });
        let pc = match new_peer_connection(&join, udp_addr, handler).await {
            Ok(pc) => pc,
            Err(err) => {
                signal.close().await;
                return Err(err);
            }
        };
        let _ = events_tx.send(RoomEvent::Participants(join.other_participants.clone()));
        let subscribed = Arc::new(Mutex::new(std::collections::HashSet::new()));
        subscribe_audio(&signal, &subscribed, &join.other_participants).await;

        let task = tokio::spawn(drive(signal.clone(), pc.clone(), signal_events, candidates_rx, events_tx, subscribed));
        let created_at_ms = join
            .room
            .as_ref()
            .and_then(|r| [r.creation_time_ms, r.creation_time * 1000].into_iter().find(|ms| *ms > 0));
        Ok((Self { created_at_ms, signal, pc, task }, events_rx))
    }

    /// Leaves the room politely and stops receiving.
    pub async fn leave(self) {
        let leave = proto::LeaveRequest {
            can_reconnect: false,
            reason: proto::DisconnectReason::ClientInitiated as i32,
            action: proto::leave_request::Action::Disconnect as i32,
            ..Default::default()
        };
        // After LiveKit closed the connection itself there is nobody to tell.
        if self.signal.is_connected().await {
            self.signal.send(proto::signal_request::Message::Leave(leave)).await;
        }
        self.task.abort();
        let _ = self.pc.close().await;
        self.signal.close().await;
    }
}

async fn new_peer_connection(
    join: &proto::JoinResponse,
    udp_addr: SocketAddr,
    handler: Arc<Handler>,
) -> Result<Arc<dyn PeerConnection>, JoinError> {
    use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
    let mut media = MediaEngine::default();
    // Opus only (no RED): LiveKit then sends plain Opus, which is what the audio path decodes.
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: "audio/opus".to_owned(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                    rtcp_feedback: vec![],
                },
                payload_type: 111,
            },
            RtpCodecKind::Audio,
        )
        .map_err(webrtc_err)?;
    let registry = register_default_interceptors(Registry::new(), &mut media).map_err(webrtc_err)?;
    let ice_servers = join
        .ice_servers
        .iter()
        .map(|s| RTCIceServer { urls: s.urls.clone(), username: s.username.clone(), credential: s.credential.clone() })
        .collect();
    let relay_only =
        join.client_configuration.as_ref().is_some_and(|c| c.force_relay == proto::ClientConfigSetting::Enabled as i32);
    let policy = if relay_only { RTCIceTransportPolicy::Relay } else { RTCIceTransportPolicy::All };
    let config = RTCConfigurationBuilder::new().with_ice_servers(ice_servers).with_ice_transport_policy(policy).build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![udp_addr])
        .build()
        .await
        .map_err(webrtc_err)?;
    Ok(Arc::new(pc))
}

/// Asks LiveKit for every audio track of `participants` not asked for yet.
async fn subscribe_audio(
    signal: &SignalClient,
    subscribed: &Mutex<std::collections::HashSet<String>>,
    participants: &[proto::ParticipantInfo],
) {
    let wanted: Vec<String> = {
        let mut subscribed = subscribed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        participants
            .iter()
            .filter(|p| p.state != proto::participant_info::State::Disconnected as i32)
            .flat_map(|p| p.tracks.iter())
            .filter(|t| t.r#type == proto::TrackType::Audio as i32)
            .filter(|t| subscribed.insert(t.sid.clone()))
            .map(|t| t.sid.clone())
            .collect()
    };
    if !wanted.is_empty() {
        let update = proto::UpdateSubscription { track_sids: wanted, subscribe: true, ..Default::default() };
        signal.send(proto::signal_request::Message::Subscription(update)).await;
    }
}

/// Runs the signalling side: offers, ICE candidates both ways, participant updates, and the end.
async fn drive(
    signal: Arc<SignalClient>,
    pc: Arc<dyn PeerConnection>,
    mut signal_events: mpsc::UnboundedReceiver<SignalEvent>,
    mut local_candidates: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    events: mpsc::UnboundedSender<RoomEvent>,
    subscribed: Arc<Mutex<std::collections::HashSet<String>>>,
) {
    // Remote candidates that arrive before the offer they belong to.
    let mut early_candidates: Vec<RTCIceCandidateInit> = Vec::new();
    let mut have_remote = false;
    let mut first_mid: Option<String> = None;
    let reason = loop {
        tokio::select! {
            event = signal_events.recv() => {
                let message = match event {
                    Some(SignalEvent::Message(m)) => *m,
                    Some(SignalEvent::Close(reason)) => break format!("signalling closed: {reason}"),
                    None => break "signalling ended".to_owned(),
                };
                use proto::signal_response::Message as M;
                match message {
                    M::Offer(offer) => {
                        match answer(&pc, &offer).await {
                            Ok(answer_sdp) => {
                                have_remote = true;
                                first_mid = first_mid.or_else(|| first_mid_of(&answer_sdp));
                                for c in early_candidates.drain(..) {
                                    if let Err(err) = pc.add_ice_candidate(c).await {
                                        tracing::debug!(error = %err, "ignoring a remote ICE candidate");
                                    }
                                }
                                let description = proto::SessionDescription {
                                    r#type: "answer".to_owned(),
                                    sdp: answer_sdp,
                                    id: offer.id,
                                    ..Default::default()
                                };
                                signal.send(proto::signal_request::Message::Answer(description)).await;
                            }
                            Err(err) => break format!("cannot answer LiveKit's offer: {err}"),
                        }
                    }
                    M::Trickle(trickle) if trickle.target == proto::SignalTarget::Subscriber as i32 => {
                        match serde_json::from_str::<RTCIceCandidateInit>(&trickle.candidate_init) {
                            Ok(candidate) if have_remote => {
                                if let Err(err) = pc.add_ice_candidate(candidate).await {
                                    tracing::debug!(error = %err, "ignoring a remote ICE candidate");
                                }
                            }
                            Ok(candidate) => early_candidates.push(candidate),
                            Err(err) => tracing::debug!(error = %err, "unreadable ICE candidate from LiveKit"),
                        }
                    }
                    M::Update(update) => {
                        subscribe_audio(&signal, &subscribed, &update.participants).await;
                        let _ = events.send(RoomEvent::Participants(update.participants));
                    }
                    M::Leave(leave) => {
                        let reason = proto::DisconnectReason::try_from(leave.reason)
                            .map_or_else(|_| leave.reason.to_string(), |r| r.as_str_name().to_owned());
                        break format!("LiveKit asked the assistant to leave ({reason})");
                    }
                    _ => {}
                }
            }
            candidate = local_candidates.recv() => {
                let Some(mut candidate) = candidate else { continue };
                if let Some(mid) = &first_mid {
                    // With BUNDLE every candidate belongs to the first media section.
                    candidate.sdp_mid = Some(mid.clone());
                }
                if let Ok(json) = serde_json::to_string(&candidate) {
                    let trickle = proto::TrickleRequest {
                        candidate_init: json,
                        target: proto::SignalTarget::Subscriber as i32,
                        r#final: false,
                    };
                    signal.send(proto::signal_request::Message::Trickle(trickle)).await;
                }
            }
        }
    };
    let _ = events.send(RoomEvent::Closed(reason));
}

async fn answer(pc: &Arc<dyn PeerConnection>, offer: &proto::SessionDescription) -> Result<String, JoinError> {
    let offer = RTCSessionDescription::offer(offer.sdp.clone()).map_err(webrtc_err)?;
    pc.set_remote_description(offer).await.map_err(webrtc_err)?;
    let answer = pc.create_answer(None).await.map_err(webrtc_err)?;
    let sdp = answer.sdp.clone();
    pc.set_local_description(answer).await.map_err(webrtc_err)?;
    Ok(pc.local_description().await.map(|d| d.sdp).unwrap_or(sdp))
}

fn first_mid_of(sdp: &str) -> Option<String> {
    sdp.lines().find_map(|l| l.strip_prefix("a=mid:")).map(|m| m.trim().to_owned())
}

/// Connection callbacks. They run on the WebRTC driver, so they only hand things over and return.
struct Handler {
    events: mpsc::UnboundedSender<RoomEvent>,
    candidates: mpsc::UnboundedSender<RTCIceCandidateInit>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let _ = self.candidates.send(init);
            }
            Err(err) => tracing::debug!(error = %err, "cannot signal a local ICE candidate"),
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, "media connection state");
        if state == RTCPeerConnectionState::Failed {
            let _ = self.events.send(RoomEvent::Closed("the media connection failed".into()));
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        // LiveKit's stream id is `PA_participant|TR_track`; older servers put the track id in the track.
        let stream_id = track.stream_id().await.to_string();
        let (participant_sid, track_sid) = match stream_id.split_once('|') {
            Some((p, t)) => (p.to_owned(), t.to_owned()),
            None => (stream_id, track.track_id().await.to_string()),
        };
        let (tx, rx) = mpsc::channel(TRACK_QUEUE);
        let _ = self.events.send(RoomEvent::Track(AudioTrack {
            participant_sid,
            track_sid: track_sid.clone(),
            packets: rx,
        }));
        tokio::spawn(async move {
            let mut dropped = 0u64;
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(packet) => {
                        let packet = RtpPacket {
                            sequence: packet.header.sequence_number,
                            timestamp: packet.header.timestamp,
                            payload: packet.payload.to_vec(),
                            arrival_ms: crate::time::now_ms(),
                        };
                        match tx.try_send(packet) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                dropped += 1;
                                if dropped.is_power_of_two() {
                                    tracing::warn!(track = %track_sid, dropped, "audio path behind: packets dropped");
                                }
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => break,
                        }
                    }
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

/// Participants by sid, kept current from [`RoomEvent::Participants`].
#[derive(Debug, Default)]
pub struct Roster {
    by_sid: HashMap<String, proto::ParticipantInfo>,
}

impl Roster {
    pub fn update(&mut self, participants: Vec<proto::ParticipantInfo>) {
        for p in participants {
            if p.state == proto::participant_info::State::Disconnected as i32 {
                self.by_sid.remove(&p.sid);
            } else {
                self.by_sid.insert(p.sid.clone(), p);
            }
        }
    }

    /// (identity, display name) of a participant.
    pub fn speaker(&self, participant_sid: &str) -> Option<(String, String)> {
        self.by_sid.get(participant_sid).map(|p| (p.identity.clone(), p.name.clone()))
    }
}
