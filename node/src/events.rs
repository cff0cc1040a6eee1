//! Membership events as JSON lines on stdout, each stamped with `at_ms` since start.

use rumor::{Event, Handle, Member};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Prints `line` with `at_ms` (milliseconds since `t0`) added.
pub fn emit(t0: Instant, mut line: Value) {
    if let Value::Object(map) = &mut line {
        map.insert("at_ms".into(), json!(t0.elapsed().as_millis() as u64));
    }
    // Not println!: it panics when stdout is a closed pipe (`| head`), and a panic
    // here would end the process without a Leave. A lost line is the reader's choice.
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn member_line(event: &str, m: &Member) -> Value {
    json!({
        "event": event,
        "member": m.name(),
        "incarnation": m.incarnation,
        "addr": m.addr.to_string(),
        "state": m.state.as_str(),
    })
}

/// The JSON line of one event of node `h`.
pub fn event_line(h: &Handle, e: &Event) -> Value {
    match e {
        Event::JoinedCluster => json!({"event": "cluster_joined", "member": h.name()}),
        Event::Synced => json!({"event": "synced", "member": h.name()}),
        Event::MemberJoined(m) => member_line("joined", m),
        Event::MemberUpdated(m) => {
            let mut v = member_line("updated", m);
            v["metadata"] = json!(String::from_utf8_lossy(&m.metadata));
            v
        }
        Event::MemberSuspected { member, cause } => {
            let mut v = member_line("suspected", member);
            v["cause"] = json!(cause.as_str());
            v
        }
        Event::MemberAlive(m) => member_line("alive", m),
        Event::MemberDead { member, cause } => {
            let mut v = member_line("dead", member);
            v["cause"] = json!(cause.as_str());
            v
        }
        Event::MemberLeft(m) => {
            let mut v = member_line("left", m);
            v["cause"] = json!("left");
            v
        }
        Event::SelfSuspected { by, incarnation } => {
            let by = h
                .members()
                .into_iter()
                .find(|m| m.id == *by)
                .map_or_else(|| by.to_string(), |m| m.name().to_string());
            json!({"event": "self_suspected", "member": h.name(), "incarnation": incarnation, "by": by})
        }
        Event::SelfRefuted { incarnation } => {
            json!({"event": "refuted", "member": h.name(), "incarnation": incarnation})
        }
        Event::Broadcast { origin, payload } => json!({
            "event": "broadcast",
            "origin": origin.to_string(),
            "len": payload.len(),
        }),
        other => json!({"event": "other", "debug": format!("{other:?}")}),
    }
}
