//! Evidence and retention, as an auditor and an administrator use them: `airlock sessions export` (JSON with
//! hashes and chain head; asciicast v2 for command output), `airlock sessions verify --file` offline, and the
//! retention purge of whole sessions, on SQLite and Postgres stores.

use std::io::Write as _;

use airlock_tests::airlock::Airlock;
use airlock_tests::sshd::Sshd;
use gateway_core::config::Config;
use gateway_core::identity::Identity;
use gateway_core::pipeline::{CallStatus, Caller, Gateway, SqlRequest, SshRequest, ToolRequest};
use gateway_core::record::AUDIT_SESSION;
use serde_json::Value;

fn append_config(airlock: &Airlock, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(&airlock.config).expect("config");
    f.write_all(text.as_bytes()).expect("append");
}

/// The installation's gateway, in process (same config and store as the binary uses).
async fn gateway(airlock: &Airlock) -> (Gateway, Caller) {
    let config = Config::load(&airlock.config).expect("config");
    let gw = Gateway::start(config).await.expect("gateway");
    let identity = Identity::agent("auditor-test", &["agents"]);
    let session_id = gw.open_session(&identity, "test", "sessions-evidence").await.expect("session");
    (gw, Caller { identity, session_id })
}

async fn query(gw: &Gateway, caller: &Caller, sql: &str) -> CallStatus {
    gw.call(caller, ToolRequest::Sql(SqlRequest { connection: "shop".into(), query: sql.into(), max_rows: None }))
        .await
        .status
}

fn run(airlock: &Airlock, args: &[&str]) -> (bool, String) {
    let out = airlock.run(args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn an_exported_session_verifies_offline_and_tampering_is_found() {
    for (store, _target, airlock) in Airlock::on_each_store().await {
        let (gw, caller) = gateway(&airlock).await;
        assert_eq!(query(&gw, &caller, "SELECT 1 AS one").await, CallStatus::Completed, "{store}");
        assert_eq!(query(&gw, &caller, "DROP TABLE customers").await, CallStatus::Blocked, "{store}");
        let file = airlock.dir.path().join("session.json");
        let (ok, text) =
            run(&airlock, &["sessions", "export", &caller.session_id, "--output", file.to_str().expect("path")]);
        assert!(ok, "{store}: {text}");
        let export: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
        assert_eq!(export["format"], "airlock.session.v1");
        assert_eq!(export["session"]["subject"], "auditor-test");
        let events = export["events"].as_array().expect("events");
        assert_eq!(export["chain"]["events"], events.len());
        assert_eq!(
            export["chain"]["head"],
            events.last().expect("event")["hash"],
            "{store}: the head is the last hash"
        );
        assert!(text.contains(export["chain"]["head"].as_str().expect("head")), "{store}: the head is printed");

        let (ok, text) = run(&airlock, &["sessions", "verify", "--file", file.to_str().expect("path")]);
        assert!(ok && text.contains(": ok ("), "{store}: {text}");

        // An altered payload breaks the chain at that event.
        let mut altered = export.clone();
        let at = events.iter().position(|e| e["kind"] == "request").expect("a request");
        let payload = altered["events"][at]["payload"].as_str().expect("payload").replace("SELECT 1", "SELECT 2");
        altered["events"][at]["payload"] = Value::String(payload);
        let bad = airlock.dir.path().join("altered.json");
        std::fs::write(&bad, altered.to_string()).expect("write");
        let (ok, text) = run(&airlock, &["sessions", "verify", "--file", bad.to_str().expect("path")]);
        assert!(!ok, "{store}: {text}");
        assert!(text.contains(&format!("BROKEN at event {}", at + 1)), "{store}: {text}");

        // A dropped last event (the easiest forgery to miss) contradicts the stated head.
        let mut cut = export.clone();
        cut["events"].as_array_mut().expect("events").pop();
        std::fs::write(&bad, cut.to_string()).expect("write");
        let (ok, text) = run(&airlock, &["sessions", "verify", "--file", bad.to_str().expect("path")]);
        assert!(!ok && text.contains("removed from or added to the end"), "{store}: {text}");

        let (ok, text) = run(&airlock, &["sessions", "export", "no-such-session"]);
        assert!(!ok && text.contains("no session"), "{store}: {text}");
    }
}

#[tokio::test]
async fn command_output_exports_as_an_asciicast_with_its_timing() {
    let sshd = Sshd::start().unwrap_or_else(|e| panic!("the SSH tests need a real sshd: {e}"));
    let target = tempfile::tempdir().expect("tempdir");
    let airlock = Airlock::new(Airlock::sqlite_target(target.path()), None);
    append_config(
        &airlock,
        &format!(
            "\n[connections.web]\nkind = \"ssh\"\nurl = \"ssh://{}@127.0.0.1:{}\"\nprivate_key = {{ file = {:?} }}\n\
             host_key = {:?}\n",
            sshd.user(),
            sshd.port(),
            sshd.client_key_path().display().to_string(),
            sshd.host_key_line()
        ),
    );
    let (gw, caller) = gateway(&airlock).await;
    let o = gw
        .call(
            &caller,
            ToolRequest::Ssh(SshRequest {
                connection: "web".into(),
                command: "echo one; echo two >&2".into(),
                timeout_s: None,
            }),
        )
        .await;
    assert_eq!(o.status, CallStatus::Completed, "{o:?}");
    let (ok, cast) = run(&airlock, &["sessions", "export", &caller.session_id, "--format", "asciicast"]);
    assert!(ok, "{cast}");
    let mut lines = cast.lines();
    let header: Value = serde_json::from_str(lines.next().expect("header")).expect("header json");
    assert_eq!(header["version"], 2);
    assert!(header["title"].as_str().unwrap_or_default().contains("echo one"), "{header}");
    let frames: Vec<Value> = lines.map(|l| serde_json::from_str(l).expect("frame json")).collect();
    let text: String = frames.iter().map(|f| f[2].as_str().unwrap_or_default()).collect();
    assert!(text.contains("one\r\n") && text.contains("two\r\n"), "{frames:?}");
    assert!(frames.iter().all(|f| f[0].as_f64().is_some_and(|t| t >= 0.0) && f[1] == "o"), "{frames:?}");
    // A session without command output has nothing to play back.
    let (gw2, caller2) = gateway(&airlock).await;
    assert_eq!(query(&gw2, &caller2, "SELECT 1").await, CallStatus::Completed);
    let (ok, text) = run(&airlock, &["sessions", "export", &caller2.session_id, "--format", "asciicast"]);
    assert!(!ok && text.contains("no command output"), "{text}");
}

async fn count(gw: &Gateway, sql: &'static str, session: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql).bind(session).fetch_one(gw.store().pool()).await.expect("count").try_get::<i64, _>(0).expect("n")
}

#[tokio::test]
async fn whole_sessions_past_retention_are_purged_and_the_purge_is_recorded() {
    const DAY_MS: i64 = 86_400_000;
    for (store, target, airlock) in Airlock::on_each_store().await {
        // `keep` is kept 90 days; everything else 7.
        append_config(
            &airlock,
            &format!(
                "retention_days = 90\n\n[connections.other]\nkind = \"sqlite\"\nurl = \"sqlite://{}/other.db?mode=rwc\"\n\n\
                 [retention]\ndays = 7\n",
                target.path().display()
            ),
        );
        let text = std::fs::read_to_string(&airlock.config).expect("config");
        // The shop connection keeps 90 days; rename it so `keep` is the 90-day one and `other` the default.
        std::fs::write(&airlock.config, text.replacen("[connections.shop]", "[connections.keep]", 1)).expect("write");
        let config = Config::load(&airlock.config).expect("config");
        let gw = Gateway::start(config.clone()).await.expect("gateway");
        let open = |subject: &'static str| {
            let gw = &gw;
            async move {
                let identity = Identity::agent(subject, &["agents"]);
                let session_id = gw.open_session(&identity, "test", "retention").await.expect("session");
                Caller { identity, session_id }
            }
        };
        let short = open("short-lived").await;
        let sql = |conn: &str, c: &Caller| {
            let req =
                ToolRequest::Sql(SqlRequest { connection: conn.into(), query: "SELECT 1".into(), max_rows: None });
            let gw = &gw;
            let c = c.clone();
            async move { gw.call(&c, req).await.status }
        };
        assert_eq!(sql("other", &short).await, CallStatus::Completed, "{store}");
        let long = open("long-lived").await;
        assert_eq!(sql("keep", &long).await, CallStatus::Completed, "{store}");
        let events_of_short = count(&gw, "SELECT COUNT(*) FROM events WHERE session_id = $1", &short.session_id).await;

        // Partial deletion is refused by the store itself, purge or not.
        let partial = sqlx::query("DELETE FROM events WHERE session_id = $1 AND seq = 2")
            .bind(&short.session_id)
            .execute(gw.store().pool())
            .await;
        assert!(partial.is_err(), "{store}: events are append-only");

        // Nothing is due today.
        let (ok, text) = run(&airlock, &["sessions", "purge", "--dry-run"]);
        assert!(ok && text.contains("0 session(s) past retention"), "{store}: {text}");
        assert!(gw.purge_expired(false).await.expect("purge").is_empty());

        // Eight days on: the 7-day session goes, whole; the 90-day one stays.
        let later = gateway_core::store::now_ms() + 8 * DAY_MS;
        let recorder = gw.recorder();
        let dry = gateway_core::retention::purge_expired(recorder, &config, later, true).await.expect("dry run");
        assert_eq!(dry.len(), 1, "{store}: {dry:?}");
        assert_eq!(
            count(&gw, "SELECT COUNT(*) FROM events WHERE session_id = $1", &short.session_id).await,
            events_of_short
        );
        let purged = gateway_core::retention::purge_expired(recorder, &config, later, false).await.expect("purge");
        assert_eq!(purged.len(), 1, "{store}: {purged:?}");
        assert_eq!(purged[0].session_id, short.session_id);
        assert_eq!((purged[0].retention_days, purged[0].events), (7, events_of_short));
        for table in
            ["SELECT COUNT(*) FROM events WHERE session_id = $1", "SELECT COUNT(*) FROM sessions WHERE id = $1"]
        {
            assert_eq!(count(&gw, table, &short.session_id).await, 0, "{store}: {table}");
        }
        assert_eq!(count(&gw, "SELECT COUNT(*) FROM session_purges WHERE session_id = $1", &short.session_id).await, 1);
        assert!(count(&gw, "SELECT COUNT(*) FROM events WHERE session_id = $1", &long.session_id).await > 0, "{store}");
        // The purge is in the audit chain, with the purged chain's head, and the audit chain verifies.
        let audit = recorder.events(AUDIT_SESSION).await.expect("audit");
        let purge_event = audit.iter().rfind(|e| e.kind == "session_purged").expect("session_purged event");
        let payload: Value = serde_json::from_str(&purge_event.payload).expect("json");
        assert_eq!(payload["session_id"], short.session_id.as_str());
        assert_eq!(payload["head"], purged[0].head.clone().expect("head").as_str());
        assert!(recorder.verify(AUDIT_SESSION).await.expect("verify").is_valid(), "{store}");
        // Purge records are permanent.
        let erase = sqlx::query("DELETE FROM session_purges WHERE session_id = $1")
            .bind(&short.session_id)
            .execute(gw.store().pool())
            .await;
        assert!(erase.is_err(), "{store}: purge records cannot be deleted");
        // Ninety-one days on, the long-lived session goes too.
        let much_later = gateway_core::store::now_ms() + 91 * DAY_MS;
        let purged = gateway_core::retention::purge_expired(recorder, &config, much_later, false).await.expect("purge");
        assert!(purged.iter().any(|p| p.session_id == long.session_id && p.retention_days == 90), "{purged:?}");
        assert!(!purged.iter().any(|p| p.session_id == AUDIT_SESSION), "the audit session is never purged");
        let (ok, text) = run(&airlock, &["sessions", "verify", "--all"]);
        assert!(ok, "{store}: what remains verifies: {text}");
    }
}
