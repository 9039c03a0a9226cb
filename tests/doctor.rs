//! `confctl doctor`'s checks against real parts: a database before and after migration, the local file
//! store, LiveKit (the double) and the configuration advice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use confctl::doctor::{self, Verdict};
use support::{Db, WithLiveKit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_report_each_part_with_hints() {
    let w = WithLiveKit::spawn(Db::Sqlite, &[("public_url", "https://lectures.example.edu")]).await;
    let checks = doctor::run(&w.t.config).await;
    let by_name = |n: &str| checks.iter().find(|c| c.name == n).unwrap_or_else(|| panic!("no {n} check"));
    assert_eq!(by_name("database").verdict, Verdict::Ok, "{:?}", by_name("database"));
    assert_eq!(by_name("storage").verdict, Verdict::Ok, "{:?}", by_name("storage"));
    assert_eq!(by_name("livekit").verdict, Verdict::Ok, "{:?}", by_name("livekit"));
    assert!(by_name("webhook").message.contains("https://lectures.example.edu/api/webhooks/livekit"));
    assert_eq!(by_name("certificate").verdict, Verdict::Ok);
    assert!(by_name("disk").message.contains("GiB free"));
    assert!(w.lk.calls_for("ListRooms").iter().any(|c| c.grants.room_list), "LiveKit was really asked");

    // A wrong secret, an unreachable store and a fresh database each fail with a hint.
    let mut broken = w.t.config.clone();
    broken.livekit.api_secret = confctl::secret::Secret::new("wrong-secret");
    broken.database_url =
        Some(confctl::secret::Secret::new(format!("sqlite://{}/fresh.db", w.t.data_dir.path().display())));
    let checks = doctor::run(&broken).await;
    let by_name = |n: &str| checks.iter().find(|c| c.name == n).unwrap().clone();
    assert_eq!(by_name("livekit").verdict, Verdict::Fail);
    assert!(by_name("livekit").hint.is_some());
    assert_eq!(by_name("database").verdict, Verdict::Fail);
    assert!(by_name("database").message.contains("pending"));
    w.t.stop().await;
}

#[test]
fn a_broken_configuration_is_a_failed_check() {
    let result = confctl::config::load(&confctl::config::Sources {
        env: vec![("CONFCTL_LISTEN".into(), "nowhere".into())],
        ..Default::default()
    });
    let check = doctor::config_check(&result);
    assert_eq!(check.verdict, Verdict::Fail);
    assert!(check.message.contains("listen") && check.hint.is_some());
    let json = serde_json::to_value(&check).unwrap();
    assert_eq!(json["verdict"], "fail");
}
