//! Checks the double against the real LiveKit Rust SDK client, so the double stays faithful to what confctl will meet in production.

// Helpers outside #[test] fns are test code too; a panic is how they report failure.
#![allow(clippy::unwrap_used)]

use confctl_doubles::{LiveKitDouble, LiveKitDoubleConfig};
use livekit_api::access_token::VideoGrants;
use livekit_api::services::room::{CreateRoomOptions, RoomClient, SendDataOptions, UpdateParticipantOptions};
use livekit_api::services::{ServerError, ServiceError};
use livekit_protocol as proto;
use prost::Message as _;
use serde_json::{Value, json};

const KEY: &str = "test-key";
const SECRET: &str = "test-secret-that-is-long-enough";

async fn start() -> LiveKitDouble {
    LiveKitDouble::start(LiveKitDoubleConfig::new(KEY, SECRET)).await.unwrap()
}

fn twirp_code(err: &ServiceError) -> Option<(&str, &str)> {
    match err {
        ServiceError::Twirp(ServerError::Twirp(code)) => Some((&code.code, &code.msg)),
        _ => None,
    }
}

/// Posts a protobuf Twirp request with a hand-made token, as the SDK would but with any grants.
async fn post_raw(double: &LiveKitDouble, method: &str, token: Option<&str>, body: Vec<u8>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("{}/twirp/livekit.RoomService/{method}", double.url()))
        .header("content-type", "application/protobuf")
        .body(body);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

#[tokio::test]
async fn create_list_delete_rooms() {
    let double = start().await;
    let client = double.room_client();

    let room = client
        .create_room("lecture-1", CreateRoomOptions { metadata: "{\"course\":1}".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(room.name, "lecture-1");
    assert!(room.sid.starts_with("RM_"));
    assert_eq!(room.metadata, "{\"course\":1}");
    assert_eq!(room.empty_timeout, 300, "LiveKit's default empty timeout");
    client.create_room("lecture-2", CreateRoomOptions::default()).await.unwrap();

    let again = client.create_room("lecture-1", CreateRoomOptions::default()).await.unwrap();
    assert_eq!(again.sid, room.sid, "CreateRoom on an existing room returns it");

    let all = client.list_rooms(vec![]).await.unwrap();
    let mut names: Vec<_> = all.iter().map(|r| r.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["lecture-1", "lecture-2"]);

    let filtered = client.list_rooms(vec!["lecture-2".into()]).await.unwrap();
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].name, "lecture-2");

    double.add_participant("lecture-1", "alice", "Alice", "", None);
    client.delete_room("lecture-1").await.unwrap();
    assert_eq!(double.room_names(), ["lecture-2"]);
    assert!(double.participants("lecture-1").is_empty());

    let err = client.delete_room("lecture-1").await.unwrap_err();
    assert_eq!(twirp_code(&err), Some(("not_found", "requested room does not exist")));

    let create = double.calls_for("CreateRoom");
    assert_eq!(create.len(), 3);
    assert!(create[0].grants.room_create);
    assert_eq!(create[0].room.as_deref(), Some("lecture-1"));
    assert_eq!(create[0].request_json["syncStreams"], json!(false));
    double.shutdown().await;
}

#[tokio::test]
async fn update_participant_replaces_the_whole_permission() {
    let double = start().await;
    let client = double.room_client();
    double.add_participant("lecture", "alice", "Alice", "{}", None);
    let before = double.participant("lecture", "alice").unwrap();
    assert!(before.permission.as_ref().unwrap().can_publish);

    // Only canSubscribe is set: the real server turns every other flag off.
    let updated = client
        .update_participant(
            "lecture",
            "alice",
            UpdateParticipantOptions {
                permission: Some(proto::ParticipantPermission {
                    can_subscribe: true,
                    can_publish_data: true,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let permission = updated.permission.clone().unwrap();
    assert!(permission.can_subscribe);
    assert!(permission.can_publish_data);
    assert!(!permission.can_publish);
    assert_eq!(updated.metadata, "{}", "empty metadata leaves the old value");

    let stored = double.participant("lecture", "alice").unwrap();
    assert_eq!(stored.permission, Some(permission));

    let calls = double.calls_for("UpdateParticipant");
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.status, 200);
    assert_eq!(call.identity.as_deref(), Some("alice"));
    assert!(call.grants.room_admin);
    assert_eq!(call.grants.room, "lecture");
    assert_eq!(
        call.request_json["permission"],
        json!({
            "canSubscribe": true,
            "canPublish": false,
            "canPublishData": true,
            "canPublishSources": [],
            "hidden": false,
            "recorder": false,
            "canUpdateMetadata": false,
            "agent": false,
            "canSubscribeMetrics": false,
            "canManageAgentSession": false,
        })
    );
    let typed: proto::UpdateParticipantRequest = call.request().unwrap();
    assert_eq!(typed.identity, "alice");

    // Without a permission the permission is left alone, and metadata does change.
    client
        .update_participant(
            "lecture",
            "alice",
            UpdateParticipantOptions { metadata: "{\"hand\":true}".into(), ..Default::default() },
        )
        .await
        .unwrap();
    let stored = double.participant("lecture", "alice").unwrap();
    assert_eq!(stored.metadata, "{\"hand\":true}");
    assert!(stored.permission.unwrap().can_subscribe);
    assert!(double.calls_for("UpdateParticipant")[1].request_json["permission"].is_null());
}

#[tokio::test]
async fn participants_are_listed_fetched_and_removed() {
    let double = start().await;
    let client = double.room_client();
    double.add_participant("lecture", "alice", "Alice", "", None);
    double.add_participant("lecture", "bob", "Bob", "", None);

    let listed = client.list_participants("lecture").await.unwrap();
    let ids: Vec<_> = listed.iter().map(|p| p.identity.as_str()).collect();
    assert_eq!(ids, ["alice", "bob"]);
    assert!(client.list_participants("nowhere").await.unwrap().is_empty());

    let bob = client.get_participant("lecture", "bob").await.unwrap();
    assert_eq!(bob.name, "Bob");
    assert!(bob.sid.starts_with("PA_"));

    client.remove_participant("lecture", "bob").await.unwrap();
    assert_eq!(double.participants("lecture").len(), 1);

    let err = client.remove_participant("lecture", "mallory").await.unwrap_err();
    assert_eq!(twirp_code(&err), Some(("not_found", "participant does not exist")));
    let err = client.get_participant("lecture", "bob").await.unwrap_err();
    assert_eq!(twirp_code(&err).map(|c| c.0), Some("not_found"));
    let last = double.calls_for("RemoveParticipant").pop().unwrap();
    assert_eq!(last.status, 404);
    assert_eq!(last.identity.as_deref(), Some("mallory"));
}

#[tokio::test]
async fn wrong_secret_is_rejected_before_twirp() {
    let double = start().await;
    double.add_room("lecture");
    let client = RoomClient::with_api_key(&double.url(), KEY, "not-the-secret");
    let err = client.list_rooms(vec![]).await.unwrap_err();
    // The real middleware answers 401 with a plain-text body, which the SDK cannot parse as a
    // Twirp error, so it surfaces as a request error rather than a Twirp code.
    assert!(matches!(err, ServiceError::Twirp(ServerError::Request(_))), "{err:?}");
    let call = double.calls_for("ListRooms").pop().unwrap();
    assert_eq!(call.status, 401);
    assert_eq!(call.grants, VideoGrants::default());

    let other_key = RoomClient::with_api_key(&double.url(), "other-key", SECRET);
    assert!(other_key.list_rooms(vec![]).await.is_err());

    let (status, body) =
        post_raw(&double, "ListRooms", Some("not.a.jwt"), proto::ListRoomsRequest::default().encode_to_vec()).await;
    assert_eq!((status, body.as_str()), (401, "invalid authorization token"));
}

#[tokio::test]
async fn grants_are_checked_per_method_and_room() {
    let double = start().await;
    double.add_participant("room-a", "alice", "Alice", "", None);
    double.add_participant("room-b", "bob", "Bob", "", None);

    let admin_a = double.token(VideoGrants { room_admin: true, room: "room-a".into(), ..Default::default() }).unwrap();
    let remove_bob =
        proto::RoomParticipantIdentity { room: "room-b".into(), identity: "bob".into(), ..Default::default() }
            .encode_to_vec();
    let (status, body) = post_raw(&double, "RemoveParticipant", Some(&admin_a), remove_bob).await;
    assert_eq!(status, 401);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, json!({"code": "unauthenticated", "msg": "permissions denied"}));
    assert_eq!(double.participants("room-b").len(), 1, "bob is still there");
    let call = double.calls_for("RemoveParticipant").pop().unwrap();
    assert_eq!(call.status, 401);
    assert_eq!(call.room.as_deref(), Some("room-b"));
    assert_eq!(call.grants.room, "room-a");

    // The same token works on its own room.
    let remove_alice =
        proto::RoomParticipantIdentity { room: "room-a".into(), identity: "alice".into(), ..Default::default() }
            .encode_to_vec();
    let (status, _) = post_raw(&double, "RemoveParticipant", Some(&admin_a), remove_alice).await;
    assert_eq!(status, 200);

    // roomAdmin does not imply roomList or roomCreate, and no token means no grants.
    let list = proto::ListRoomsRequest::default().encode_to_vec();
    let (status, _) = post_raw(&double, "ListRooms", Some(&admin_a), list.clone()).await;
    assert_eq!(status, 401);
    let (status, body) = post_raw(&double, "ListRooms", None, list).await;
    assert_eq!(status, 401);
    assert!(body.contains("permissions denied"));
    let create_only = double.token(VideoGrants { room_create: true, ..Default::default() }).unwrap();
    let delete = proto::DeleteRoomRequest { room: "room-b".into() }.encode_to_vec();
    let (status, _) = post_raw(&double, "DeleteRoom", Some(&create_only), delete).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn send_data_is_recorded_with_topic() {
    let double = start().await;
    let client = double.room_client();
    double.add_room("lecture");

    client
        .send_data(
            "lecture",
            b"{\"type\":\"chat\"}".to_vec(),
            SendDataOptions {
                kind: proto::data_packet::Kind::Reliable,
                topic: Some("chat".into()),
                destination_identities: vec!["alice".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let sent = double.sent_data("lecture");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].topic.as_deref(), Some("chat"));
    assert_eq!(sent[0].text(), Some("{\"type\":\"chat\"}"));
    assert_eq!(sent[0].destination_identities, ["alice"]);
    assert_eq!(sent[0].kind, proto::data_packet::Kind::Reliable);

    let call = double.calls_for("SendData").pop().unwrap();
    assert_eq!(call.request_json["topic"], json!("chat"));
    assert_eq!(call.request_json["kind"], json!("RELIABLE"));

    let err = client.send_data("nowhere", vec![1], SendDataOptions::default()).await.unwrap_err();
    assert_eq!(twirp_code(&err).map(|c| c.0), Some("not_found"));
    assert!(double.sent_data("nowhere").is_empty());

    double.clear_calls();
    assert!(double.calls().is_empty());
    assert!(double.sent_data("lecture").is_empty());
}

#[tokio::test]
async fn mute_and_room_metadata() {
    let double = start().await;
    let client = double.room_client();
    double.add_participant("lecture", "alice", "Alice", "", None);
    let track =
        double.add_track("lecture", "alice", "mic", proto::TrackType::Audio, proto::TrackSource::Microphone).unwrap();

    let muted = client.mute_published_track("lecture", "alice", &track.sid, true).await.unwrap();
    assert!(muted.muted);
    assert!(double.participant("lecture", "alice").unwrap().tracks[0].muted);

    let err = client.mute_published_track("lecture", "alice", &track.sid, false).await.unwrap_err();
    assert_eq!(twirp_code(&err), Some(("failed_precondition", "remote unmute not enabled")));

    let room = client.update_room_metadata("lecture", "{\"state\":\"live\"}").await.unwrap();
    assert_eq!(room.metadata, "{\"state\":\"live\"}");
    assert_eq!(room.num_participants, 1);
    let err = client.update_room_metadata("nowhere", "x").await.unwrap_err();
    assert_eq!(twirp_code(&err).map(|c| c.0), Some("not_found"));
}

#[tokio::test]
async fn twirp_routing_and_json_encoding() {
    let double = start().await;
    let token = double.token(VideoGrants { room_list: true, room_create: true, ..Default::default() }).unwrap();
    let http = reqwest::Client::new();

    let resp = http
        .post(format!("{}/twirp/livekit.RoomService/Frobnicate", double.url()))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().await.unwrap_or_default();
    assert_eq!(body["code"], "bad_route");

    let resp = http
        .post(format!("{}/twirp/livekit.RoomService/CreateRoom", double.url()))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(r#"{"name":"json-room","empty_timeout":60}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let room: Value = resp.json().await.unwrap_or_default();
    assert_eq!(room["name"], "json-room");
    assert_eq!(room["emptyTimeout"], 60);

    let resp = http
        .post(format!("{}/twirp/livekit.RoomService/ListRooms", double.url()))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    let resp = http
        .post(format!("{}/twirp/livekit.RoomService/ListRooms", double.url()))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap_or_default();
    assert_eq!(body["code"], "malformed");

    let statuses: Vec<_> = double.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [404, 200, 404, 400]);
}
