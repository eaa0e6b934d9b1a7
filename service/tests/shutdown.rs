//! SIGTERM while the webhook receiver is down: the service exits 0 within its deadline, the
//! undelivered events stay spooled, and after a restart with the receiver up every generated
//! `event_id` arrives. Secrets (the webhook token, the MQTT password) never reach the log.

mod support;

use recognizer_serve::camera::spool_count;
use support::*;

const TOKEN: &str = "Bearer tok-5ecret-31415926";
const MQTT_PASSWORD: &str = "mqtt-pa55-27182818";

#[test]
fn sigterm_keeps_undelivered_events_for_the_next_start() {
    let dir = TempDir::new("shutdown");
    let port = free_port();
    let hook_port = free_port();
    let dead_mqtt = free_port();
    let data = dir.join("data");
    let config = write_config(
        &dir,
        port,
        &[camera(
            "cam0",
            &media(FALLING),
            &format!(
                r#"at-end = "stop"
{}[cameras.events]
location = "events/cam0.jsonl"
webhook-url = "http://127.0.0.1:{hook_port}/events"
webhook-auth-header-env = "HOOK_TOKEN"
mqtt-url = "mqtt://127.0.0.1:{dead_mqtt}"
mqtt-username = "recognizer"
mqtt-password-env = "MQTT_PASSWORD"
timeout-ms = 1000
retry-initial-ms = 200
retry-max-ms = 1000
flush-timeout-ms = 2000
"#,
                fall_sections()
            ),
        )],
    );
    let env = [("HOOK_TOKEN", TOKEN), ("MQTT_PASSWORD", MQTT_PASSWORD)];
    let spool = data.join("spool/cam0/webhook");
    let events_file = data.join("events/cam0.jsonl");

    // First run: the receiver is down; a fall event is generated and spooled.
    let mut serve = Serve::start(&config, port, &dir.join("run1.log"), &env);
    wait_until("a fall event spooled for the webhook", || {
        serve.metric("recognizer_events_total{camera=\"cam0\",type=\"fall\"}") >= 1.0
            && serve.metric("recognizer_spooled_events{camera=\"cam0\",sink=\"webhook\"}") >= 1.0
    });
    serve.signal("TERM");
    let status = serve.wait();
    // Exit 0 means every camera stopped within shutdown-timeout-s (else the service exits 1).
    assert!(
        status.success(),
        "exit status {status}: {}",
        serve.log_text()
    );
    let first_log = serve.log_text();
    let generated = event_ids(&events_file);
    assert!(
        !generated.is_empty(),
        "no event in {}",
        events_file.display()
    );
    assert_eq!(
        spool_count(&spool) as usize,
        generated.len(),
        "every undelivered event stays in the spool"
    );
    assert!(first_log.contains("stopped: sinks flushed"), "{first_log}");

    // Second run with the receiver up: the spool is replayed (and the clip runs again).
    let receiver = Receiver::start(hook_port);
    let mut serve = Serve::start(&config, port, &dir.join("run2.log"), &env);
    wait_until(
        "the camera to finish and the webhook spool to empty",
        || serve.state("cam0") == "finished" && spool_count(&spool) as usize == 0,
    );
    serve.signal("TERM");
    assert!(serve.wait().success());
    let all = event_ids(&events_file);
    let received = receiver.received();
    println!(
        "events generated: {} in the first run, {} in both; received {} distinct ids ({} deliveries)",
        generated.len(),
        all.len(),
        received.len(),
        receiver.ids.lock().unwrap().len()
    );
    assert!(generated.is_subset(&all));
    let missing: Vec<_> = all.difference(&received).collect();
    assert!(missing.is_empty(), "events never delivered: {missing:?}");
    assert_eq!(
        receiver.auth.lock().unwrap().iter().collect::<Vec<_>>(),
        vec![TOKEN],
        "the webhook carries the token from the environment"
    );

    // Secrets never logged, though deliveries failed and were reported.
    let logs = first_log + &serve.log_text();
    assert!(
        logs.lines()
            .any(|l| l.contains("\"camera\":\"cam0\"") && l.contains("delivery failed")),
        "the delivery failures are logged with the camera"
    );
    for secret in [TOKEN, "tok-5ecret-31415926", MQTT_PASSWORD] {
        assert!(!logs.contains(secret), "a secret is in the log");
    }
}

/// `recognizer-serve --check FILE`.
fn check(file: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_recognizer-serve"))
        .arg("--check")
        .arg(file)
        .env("RECOGNIZER_DATA", data_dir())
        .output()
        .unwrap()
}

#[test]
fn check_reports_file_line_and_key() {
    let example = repo().join("examples/serve.toml");
    let out = check(&example);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok, 2 cameras"));

    let dir = TempDir::new("check");
    let bad = dir.join("bad.toml");
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace("threads = 2", "threads = 100000")
        .replace("min-frames = 3", "min-frames = 3\nmin-scor = 0.5")
        .replace(
            "../",
            &format!("{}/", repo().canonicalize().unwrap().display()),
        );
    std::fs::write(&bad, &text).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let out = check(&bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let bad = bad.display();
    assert!(
        stderr.contains(&format!(
            "{bad}:{}: pose-groups.main.threads: 100000 is out of range",
            line_of("threads =")
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{bad}:{}: cameras[0].rules[0].min-scor: unknown field `min-scor`",
            line_of("min-scor")
        )),
        "{stderr}"
    );
}
