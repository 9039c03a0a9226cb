//! Owns the signalling and media side of the LiveKit double: `/rtc`, LiveKit's WebSocket signalling (binary
//! protobuf `SignalRequest`/`SignalResponse` frames from `livekit-protocol`), and a webrtc-rs peer playing the
//! SFU's part of the subscriber connection for participants' Opus audio tracks.
//!
//! Faithful to livekit-server where the assistant depends on it: the token comes in `Authorization: Bearer`
//! or `access_token=` and must grant `roomJoin` for the room; `/rtc/v1` (single peer connection) answers 404
//! so clients fall back to `/rtc`; the first frame is `join` (room, own participant, other participants with
//! their tracks, `subscriber_primary` for participants that cannot publish, non-zero ping interval/timeout);
//! with `auto_subscribe=0` a track is offered only after an `UpdateSubscription`; every offer carries a new
//! `id` and waits for its answer before the next; ICE candidates trickle both ways with target SUBSCRIBER;
//! `ping_req` gets `pong_resp`; participants joining and leaving arrive as `update`; a client `leave` ends the
//! session. The joining participant shows up in the double's room state (and webhooks), like any other.
//!
//! Audio is live: a speaker's packets play on a timeline that starts when the first subscriber's media is
//! connected, so a client that reconnects hears the lecture from where it has got to, as with a real SFU.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use livekit_protocol as proto;
use prost::Message as _;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription, Registry,
    register_default_interceptors,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::{Shared, auth, lock};

/// The protocol version the double announces (`server_info.protocol`).
const PROTOCOL: i32 = 16;

/// A speaker's audio: 20 ms Opus packets on a shared live timeline.
#[derive(Debug)]
pub(crate) struct Media {
    packets: Vec<Vec<u8>>,
    started: OnceLock<Instant>,
}

/// One `/rtc` session, for assertions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RtcSession {
    pub room: String,
    pub identity: String,
    pub name: String,
    pub hidden: bool,
    pub can_publish: bool,
    pub can_publish_data: bool,
    /// Query parameters of the WebSocket URL (`protocol`, `auto_subscribe`, `sdk`, …).
    pub query: HashMap<String, String>,
    /// Track sids the client asked for.
    pub subscribed: Vec<String>,
    pub offers: u32,
    pub answers: u32,
    /// Remote ICE candidates the client trickled.
    pub candidates: u32,
    pub pings: u32,
    /// Opus packets sent on the media connection.
    pub packets_sent: u64,
    pub media_connected: bool,
    /// `client leave`, `dropped by the test`, or `socket closed`.
    pub ended: Option<String>,
}

#[derive(Debug, Clone)]
enum Control {
    /// Participants changed in this room.
    Update { room: String, participants: Vec<proto::ParticipantInfo> },
    /// Cut every session in this room (`None`: all rooms) without a word, as a crashing server would.
    Drop { room: Option<String> },
    /// The server ends sessions with a `leave`: the room was deleted (`participant_sid: None`) or the
    /// participant removed (or replaced by a newer join with the same identity).
    Leave { room: String, participant_sid: Option<String>, reason: proto::DisconnectReason },
}

#[derive(Debug)]
pub(crate) struct RtcState {
    media: Mutex<HashMap<String, Arc<Media>>>,
    sessions: Mutex<Vec<RtcSession>>,
    control: broadcast::Sender<Control>,
}

impl RtcState {
    /// Rooms deleted and participants removed (through the Twirp API or the test) end their sessions.
    pub(crate) fn observe(&self, events: &[proto::WebhookEvent]) {
        for event in events {
            let room = event.room.as_ref().map(|r| r.name.clone()).unwrap_or_default();
            let control = match event.event.as_str() {
                "room_finished" => {
                    Control::Leave { room, participant_sid: None, reason: proto::DisconnectReason::RoomDeleted }
                }
                "participant_left" => Control::Leave {
                    room,
                    participant_sid: event.participant.as_ref().map(|p| p.sid.clone()),
                    reason: proto::DisconnectReason::ParticipantRemoved,
                },
                _ => continue,
            };
            let _ = self.control.send(control);
        }
    }
}

impl Default for RtcState {
    fn default() -> Self {
        Self { media: Mutex::default(), sessions: Mutex::default(), control: broadcast::channel(64).0 }
    }
}

impl crate::LiveKitDouble {
    /// A participant who joins `room` and speaks: publishes a microphone track playing `opus_packets` (20 ms
    /// each, see [`crate::media::opus_packets`]) once a subscriber's media is connected. Announced to
    /// connected clients with an `update`, like a late joiner.
    pub fn add_speaker(
        &self,
        room: &str,
        identity: &str,
        name: &str,
        opus_packets: Vec<Vec<u8>>,
    ) -> anyhow::Result<proto::ParticipantInfo> {
        self.add_participant(room, identity, name, r#"{"role":"host"}"#, None);
        let track =
            self.add_track(room, identity, "microphone", proto::TrackType::Audio, proto::TrackSource::Microphone)?;
        lock(&self.shared.rtc.media)
            .insert(track.sid.clone(), Arc::new(Media { packets: opus_packets, started: OnceLock::new() }));
        let info = self.participant(room, identity).ok_or_else(|| anyhow::anyhow!("the speaker vanished"))?;
        let _ =
            self.shared.rtc.control.send(Control::Update { room: room.to_owned(), participants: vec![info.clone()] });
        Ok(info)
    }

    /// A speaker leaves: connected clients get an `update` with the participant DISCONNECTED.
    pub fn remove_speaker(&self, room: &str, identity: &str) -> bool {
        let Some(mut info) = self.participant(room, identity) else { return false };
        self.remove_participant(room, identity);
        info.state = proto::participant_info::State::Disconnected as i32;
        let _ = self.shared.rtc.control.send(Control::Update { room: room.to_owned(), participants: vec![info] });
        true
    }

    /// When the track's live timeline started (its first subscriber's media connected).
    pub fn media_started(&self, track_sid: &str) -> Option<Instant> {
        lock(&self.shared.rtc.media).get(track_sid).and_then(|m| m.started.get().copied())
    }

    /// Every `/rtc` session so far, oldest first.
    pub fn rtc_sessions(&self) -> Vec<RtcSession> {
        lock(&self.shared.rtc.sessions).clone()
    }

    /// Cuts all signalling and media connections (of one room, or all) without a leave, as a media server
    /// that crashed or restarted would.
    pub fn drop_rtc_connections(&self, room: Option<&str>) {
        let _ = self.shared.rtc.control.send(Control::Drop { room: room.map(str::to_owned) });
    }
}

/// `GET /rtc/validate`: what livekit-signaling asks after a failed WebSocket upgrade, for a readable error.
pub(crate) async fn validate(State(shared): State<Arc<Shared>>, headers: HeaderMap, request: Request) -> Response {
    match join_claims(&shared, &headers, request.uri().query()) {
        Ok(_) => (StatusCode::OK, "success").into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// `/rtc/v1`: the single-peer-connection path this double (like older servers) does not have.
pub(crate) async fn v1() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found").into_response()
}

fn join_claims(
    shared: &Shared,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<livekit_api::access_token::Claims, (StatusCode, String)> {
    match auth::authenticate(headers, query, &shared.api_key, &shared.api_secret) {
        auth::Caller::Verified(claims) if claims.video.room_join && !claims.video.room.is_empty() => Ok(*claims),
        auth::Caller::Verified(_) => Err((StatusCode::UNAUTHORIZED, "permissions denied".to_owned())),
        auth::Caller::Rejected(message) => Err((StatusCode::UNAUTHORIZED, message)),
        auth::Caller::Anonymous => Err((StatusCode::UNAUTHORIZED, "no authorization token".to_owned())),
    }
}

/// `GET /rtc`: the signalling WebSocket.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let headers = request.headers().clone();
    let claims = match join_claims(&shared, &headers, request.uri().query()) {
        Ok(c) => c,
        Err(refused) => return refused.into_response(),
    };
    let is_upgrade =
        headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).filter(|_| is_upgrade) else {
        return (StatusCode::BAD_REQUEST, "expected a WebSocket upgrade").into_response();
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes()).into_owned().collect();
    let on_upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    hyper_util::rt::TokioIo::new(upgraded),
                    Role::Server,
                    None,
                )
                .await;
                if let Err(err) = Session::run(shared, claims, query, ws).await {
                    tracing::debug!(error = %err, "rtc double session ended");
                }
            }
            Err(err) => tracing::debug!(error = %err, "rtc double upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(axum::body::Body::empty())
        .unwrap_or_default()
}

struct Session {
    shared: Arc<Shared>,
    index: usize,
    room: String,
    /// This session's participant; a newer join with the same identity replaces it.
    participant_sid: String,
    out: mpsc::UnboundedSender<proto::signal_response::Message>,
    pc: Arc<dyn PeerConnection>,
    connected: watch::Receiver<bool>,
    /// Tracks added to the connection, and tracks waiting for the next offer.
    added: HashSet<String>,
    negotiating: bool,
    renegotiate: bool,
    next_offer_id: u32,
    remote_set: bool,
    early_candidates: Vec<RTCIceCandidateInit>,
    writers: Vec<tokio::task::JoinHandle<()>>,
}

impl Session {
    fn record(&self, f: impl FnOnce(&mut RtcSession)) {
        if let Some(s) = lock(&self.shared.rtc.sessions).get_mut(self.index) {
            f(s);
        }
    }

    async fn run<S>(
        shared: Arc<Shared>,
        claims: livekit_api::access_token::Claims,
        query: HashMap<String, String>,
        ws: tokio_tungstenite::WebSocketStream<S>,
    ) -> anyhow::Result<()>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let room = claims.video.room.clone();
        let identity = claims.sub.clone();
        // Unset grants mean allowed, as in livekit-server.
        let can_publish = claims.video.can_publish.unwrap_or(true);
        let can_publish_data = claims.video.can_publish_data.unwrap_or(true);
        let can_subscribe = claims.video.can_subscribe.unwrap_or(true);
        let index = {
            let mut sessions = lock(&shared.rtc.sessions);
            sessions.push(RtcSession {
                room: room.clone(),
                identity: identity.clone(),
                name: claims.name.clone(),
                hidden: claims.video.hidden,
                can_publish,
                can_publish_data,
                query: query.clone(),
                ..Default::default()
            });
            sessions.len() - 1
        };
        let mut control = shared.rtc.control.subscribe();
        let double = crate::LiveKitDouble::handle(shared.clone());
        let permission = proto::ParticipantPermission {
            can_subscribe,
            can_publish,
            can_publish_data,
            hidden: claims.video.hidden,
            ..Default::default()
        };
        let me = double.add_participant(&room, &identity, &claims.name, &claims.metadata, Some(permission));
        let my_sid = me.sid.clone();
        let room_info = double.room(&room).unwrap_or_default();
        let others: Vec<proto::ParticipantInfo> =
            double.participants(&room).into_iter().filter(|p| p.identity != identity).collect();

        let (mut ws_tx, mut ws_rx) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<proto::signal_response::Message>();
        let writer = tokio::spawn(async move {
            while let Some(message) = out_rx.recv().await {
                let frame = proto::SignalResponse { message: Some(message) }.encode_to_vec();
                if ws_tx.send(Message::binary(frame)).await.is_err() {
                    break;
                }
            }
            let _ = ws_tx.close().await;
        });

        let (connected_tx, connected) = watch::channel(false);
        let handler =
            Arc::new(ServerHandler { out: out.clone(), connected: connected_tx, shared: shared.clone(), index });
        let pc = server_peer_connection(handler).await?;
        let mut session = Session {
            shared: shared.clone(),
            index,
            room: room.clone(),
            participant_sid: me.sid.clone(),
            out: out.clone(),
            pc,
            connected,
            added: HashSet::new(),
            negotiating: false,
            renegotiate: false,
            next_offer_id: 1,
            remote_set: false,
            early_candidates: Vec::new(),
            writers: Vec::new(),
        };

        let _ = out.send(proto::signal_response::Message::Join(proto::JoinResponse {
            room: Some(room_info),
            participant: Some(me),
            other_participants: others.clone(),
            server_version: "1.9.0-double".into(),
            ice_servers: vec![],
            // A participant that cannot publish only ever has the subscriber connection.
            subscriber_primary: !can_publish,
            ping_interval: 5,
            ping_timeout: 15,
            server_info: Some(proto::ServerInfo {
                edition: proto::server_info::Edition::Standard as i32,
                version: "1.9.0-double".into(),
                protocol: PROTOCOL,
                ..Default::default()
            }),
            ..Default::default()
        }));
        if query.get("auto_subscribe").is_some_and(|v| v == "1") {
            let all: Vec<String> = audio_tracks(&others);
            session.subscribe(all).await?;
        }

        let ended = loop {
            tokio::select! {
                frame = ws_rx.next() => match frame {
                    Some(Ok(Message::Binary(bytes))) => {
                        let request = proto::SignalRequest::decode(bytes.as_ref())?;
                        if let Some(message) = request.message
                            && let Some(reason) = session.on_request(message).await?
                        {
                            break reason;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "socket closed".to_owned(),
                    Some(Ok(_)) => {}
                },
                control = control.recv() => match control {
                    Ok(Control::Update { room, participants }) if room == session.room => {
                        let _ = session.out.send(proto::signal_response::Message::Update(proto::ParticipantUpdate { participants }));
                    }
                    Ok(Control::Drop { room }) if room.as_ref().is_none_or(|r| *r == session.room) => {
                        writer.abort();
                        break "dropped by the test".to_owned();
                    }
                    Ok(Control::Leave { room, participant_sid, reason })
                        if room == session.room && participant_sid.as_ref().is_none_or(|p| *p == session.participant_sid) =>
                    {
                        let leave = proto::LeaveRequest {
                            can_reconnect: false,
                            reason: reason as i32,
                            action: proto::leave_request::Action::Disconnect as i32,
                            ..Default::default()
                        };
                        let _ = session.out.send(proto::signal_response::Message::Leave(leave));
                        break format!("server leave ({})", reason.as_str_name());
                    }
                    _ => {}
                },
            }
        };
        session.record(|s| s.ended = Some(ended.clone()));
        for w in &session.writers {
            w.abort();
        }
        let _ = session.pc.close().await;
        drop(out);
        drop(session);
        if ended != "dropped by the test" {
            let _ = writer.await;
        }
        // Only if still this session's participant: a rejoin with the same identity may have replaced it.
        if double.participant(&room, &identity).is_some_and(|p| p.sid == my_sid) {
            double.remove_participant(&room, &identity);
        }
        Ok(())
    }

    /// Handles one client request; `Some(reason)` ends the session.
    async fn on_request(&mut self, message: proto::signal_request::Message) -> anyhow::Result<Option<String>> {
        use proto::signal_request::Message as M;
        match message {
            M::Subscription(update) if update.subscribe => {
                self.record(|s| s.subscribed.extend(update.track_sids.iter().cloned()));
                self.subscribe(update.track_sids).await?;
            }
            M::Answer(answer) => {
                self.record(|s| s.answers += 1);
                self.pc.set_remote_description(RTCSessionDescription::answer(answer.sdp)?).await?;
                self.remote_set = true;
                for c in self.early_candidates.drain(..) {
                    let _ = self.pc.add_ice_candidate(c).await;
                }
                self.negotiating = false;
                if std::mem::take(&mut self.renegotiate) {
                    self.offer().await?;
                }
            }
            M::Trickle(trickle) if trickle.target == proto::SignalTarget::Subscriber as i32 => {
                self.record(|s| s.candidates += 1);
                let candidate: RTCIceCandidateInit = serde_json::from_str(&trickle.candidate_init)?;
                if self.remote_set {
                    self.pc.add_ice_candidate(candidate).await?;
                } else {
                    self.early_candidates.push(candidate);
                }
            }
            M::PingReq(ping) => {
                self.record(|s| s.pings += 1);
                let pong = proto::Pong { last_ping_timestamp: ping.timestamp, timestamp: crate::ids::now_unix_ms() };
                let _ = self.out.send(proto::signal_response::Message::PongResp(pong));
            }
            M::Ping(ts) => {
                let _ = self.out.send(proto::signal_response::Message::Pong(ts));
            }
            M::Leave(_) => return Ok(Some("client leave".to_owned())),
            _ => {}
        }
        Ok(None)
    }

    /// Adds the tracks with media to the connection and (re)negotiates.
    async fn subscribe(&mut self, track_sids: Vec<String>) -> anyhow::Result<()> {
        let mut added = false;
        for sid in track_sids {
            let media = lock(&self.shared.rtc.media).get(&sid).cloned();
            let Some(media) = media else { continue };
            if !self.added.insert(sid.clone()) {
                continue;
            }
            let participant_sid = crate::LiveKitDouble::handle(self.shared.clone())
                .participants(&self.room)
                .into_iter()
                .find(|p| p.tracks.iter().any(|t| t.sid == sid))
                .map(|p| p.sid)
                .unwrap_or_default();
            let ssrc: u32 = 0x1000_0000 | (self.added.len() as u32) << 8 | self.index as u32;
            let track = Arc::new(TrackLocalStaticSample::new(
                Instant::now(),
                MediaStreamTrack::new(
                    format!("{participant_sid}|{sid}"),
                    sid.clone(),
                    sid.clone(),
                    RtpCodecKind::Audio,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                        codec: opus_codec(),
                        ..Default::default()
                    }],
                ),
            )?);
            let sender = self.pc.add_track(track.clone() as Arc<dyn TrackLocal>).await?;
            let writer =
                tokio::spawn(play(media, track, sender, ssrc, self.connected.clone(), self.shared.clone(), self.index));
            self.writers.push(writer);
            added = true;
        }
        if added {
            if self.negotiating {
                self.renegotiate = true;
            } else {
                self.offer().await?;
            }
        }
        Ok(())
    }

    async fn offer(&mut self) -> anyhow::Result<()> {
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer.clone()).await?;
        let sdp = self.pc.local_description().await.map(|d| d.sdp).unwrap_or(offer.sdp);
        let id = self.next_offer_id;
        self.next_offer_id += 1;
        self.negotiating = true;
        self.record(|s| s.offers += 1);
        let _ = self.out.send(proto::signal_response::Message::Offer(proto::SessionDescription {
            r#type: "offer".into(),
            sdp,
            id,
            ..Default::default()
        }));
        Ok(())
    }
}

fn audio_tracks(participants: &[proto::ParticipantInfo]) -> Vec<String> {
    participants
        .iter()
        .flat_map(|p| p.tracks.iter())
        .filter(|t| t.r#type == proto::TrackType::Audio as i32)
        .map(|t| t.sid.clone())
        .collect()
}

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".into(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: vec![],
    }
}

async fn server_peer_connection(handler: Arc<ServerHandler>) -> anyhow::Result<Arc<dyn PeerConnection>> {
    let mut media = MediaEngine::default();
    media.register_codec(RTCRtpCodecParameters { rtp_codec: opus_codec(), payload_type: 111 }, RtpCodecKind::Audio)?;
    let registry = register_default_interceptors(Registry::new(), &mut media)?;
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec!["127.0.0.1:0"])
        .build()
        .await?;
    Ok(Arc::new(pc))
}

/// Writes a speaker's packets to one subscriber in real time, from where the live timeline is.
async fn play(
    media: Arc<Media>,
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    mut connected: watch::Receiver<bool>,
    shared: Arc<Shared>,
    index: usize,
) {
    if connected.wait_for(|c| *c).await.is_err() {
        return;
    }
    let Ok(parameters) = sender.get_parameters().await else { return };
    let Some(payload_type) = parameters.rtp_parameters.codecs.first().map(|c| c.payload_type) else { return };
    let started = *media.started.get_or_init(Instant::now);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let position = (started.elapsed().as_millis() / 20) as usize;
        let Some(packet) = media.packets.get(position) else { break };
        let sample = rtc::media::Sample {
            data: packet.clone().into(),
            duration: Duration::from_millis(20),
            ..rtc::media::Sample::new(Instant::now())
        };
        if track.sample_writer(ssrc, payload_type).write_sample(&sample).await.is_err() {
            break;
        }
        if let Some(s) = lock(&shared.rtc.sessions).get_mut(index) {
            s.packets_sent += 1;
        }
    }
}

struct ServerHandler {
    out: mpsc::UnboundedSender<proto::signal_response::Message>,
    connected: watch::Sender<bool>,
    shared: Arc<Shared>,
    index: usize,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for ServerHandler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json()
            && let Ok(json) = serde_json::to_string(&init)
        {
            let trickle = proto::TrickleRequest {
                candidate_init: json,
                target: proto::SignalTarget::Subscriber as i32,
                r#final: false,
            };
            let _ = self.out.send(proto::signal_response::Message::Trickle(trickle));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            self.connected.send_replace(true);
            if let Some(s) = lock(&self.shared.rtc.sessions).get_mut(self.index) {
                s.media_connected = true;
            }
        }
    }
}
