//! Cameras heal alone: an RTSP camera whose server stops for 10 s comes back by itself while a
//! file camera never stalls and keeps generating events, and a camera whose URL never answers
//! backs off without harming the others, with `/ready` and `/api/v1/cameras` saying why.

mod support;

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use support::*;

/// Processed frames of `camera`.
fn frames(serve: &Serve, camera: &str) -> f64 {
    serve.metric(&format!(
        "recognizer_frames_processed_total{{camera=\"{camera}\"}}"
    ))
}

/// Samples the file camera's frame count every 500 ms for `duration` and returns the longest
/// time its count did not grow.
fn longest_pause(serve: &Serve, camera: &str, duration: Duration) -> Duration {
    let start = Instant::now();
    let mut last = frames(serve, camera);
    let mut last_growth = Instant::now();
    let mut longest = Duration::ZERO;
    while start.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(500));
        let now = frames(serve, camera);
        if now > last {
            last = now;
            last_growth = Instant::now();
        }
        longest = longest.max(last_growth.elapsed());
    }
    longest
}

#[test]
fn cameras_heal_alone() {
    let dir = TempDir::new("heal");
    let port = free_port();
    let rtsp_port = free_port();
    // A TCP port that accepts connections and never answers (held open by the test).
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!(
        "rtsp://127.0.0.1:{}/never",
        silent.local_addr().unwrap().port()
    );
    let rtsp = RtspCamera::start(rtsp_port);
    let config = write_config(
        &dir,
        port,
        &[
            camera(
                "file",
                &media(FALLING),
                &format!(
                    "at-end = \"restart\"\nstall-timeout-s = 20\n{}[cameras.events]\nlocation = \"events/file.jsonl\"\n",
                    fall_sections()
                ),
            ),
            camera(
                "rtsp",
                &rtsp.url,
                "interval = 3\nstall-timeout-s = 3\nstart-timeout-s = 15\n[cameras.source]\ntimeout-s = 3\n",
            ),
            camera(
                "silent",
                &silent_url,
                "start-timeout-s = 4\n[cameras.source]\ntimeout-s = 2\n",
            ),
        ],
    );
    let serve = Serve::start(&config, port, &dir.join("serve.log"), &[]);

    wait_until("the file and RTSP cameras to run", || {
        serve.state("file") == "running" && serve.state("rtsp") == "running"
    });
    // The silent camera: backoff with a reason, while the others run.
    wait_until("the silent camera to back off", || {
        serve.camera("silent")["restarts"].as_u64().unwrap_or(0) >= 1
    });
    let silent_status = serve.camera("silent");
    let reason = silent_status["last_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!reason.is_empty(), "no reason given: {silent_status}");
    let (code, body) = serve.get("/ready").unwrap();
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listed = ready["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "silent")
        .cloned()
        .unwrap_or_else(|| panic!("/ready does not list the silent camera: {body}"));
    assert!(
        listed["reason"].as_str().unwrap().len() > 10,
        "/ready gives no reason: {body}"
    );
    println!("silent camera: /ready {code}: {listed}");
    assert!(serve.metric("recognizer_camera_up{camera=\"silent\"}") == 0.0);

    // The RTSP server goes away for 10 s and comes back on the same port.
    let restarts_before = serve.camera("rtsp")["restarts"].as_u64().unwrap();
    let events_before = serve.metric("recognizer_events_total{camera=\"file\",type=\"fall\"}");
    rtsp.stop();
    let outage_pause = longest_pause(&serve, "file", Duration::from_secs(10));
    let rtsp = RtspCamera::start(rtsp_port);
    wait_until("the RTSP camera to come back", || {
        serve.state("rtsp") == "running"
            && serve.camera("rtsp")["restarts"].as_u64().unwrap() > restarts_before
    });
    let rtsp_frames = frames(&serve, "rtsp");
    wait_until("the RTSP camera's frames to grow again", || {
        frames(&serve, "rtsp") > rtsp_frames + 5.0
    });
    wait_until("another fall event from the file camera", || {
        serve.metric("recognizer_events_total{camera=\"file\",type=\"fall\"}") > events_before
    });
    let after_pause = longest_pause(&serve, "file", Duration::from_secs(3));
    let status = serve.camera("rtsp");
    println!(
        "rtsp camera after the outage: {status}\nfile camera: longest pause {:.1} s during the outage, {:.1} s after",
        outage_pause.as_secs_f64(),
        after_pause.as_secs_f64()
    );
    // The file camera never stalled: its watchdog (20 s) never fired and it kept its pace
    // (frames every few seconds on this loaded 2-core machine, the clip looping).
    assert_eq!(
        serve.metric("recognizer_camera_restarts_total{camera=\"file\",reason=\"stall\"}"),
        0.0
    );
    assert_eq!(
        serve.metric("recognizer_camera_restarts_total{camera=\"file\",reason=\"error\"}"),
        0.0
    );
    assert!(
        outage_pause < Duration::from_secs(10),
        "the file camera stood still for the whole outage"
    );
    let log = serve.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("\"camera\":\"rtsp\"") && l.contains("restarting after backoff")),
        "the RTSP camera's failure is logged with its id"
    );
    drop(rtsp);
}
