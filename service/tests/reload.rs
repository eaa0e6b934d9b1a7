//! SIGHUP reloads the configuration and touches only the cameras that were added, removed or
//! changed; an invalid file is refused and the running configuration stays. An operator's
//! restart of one camera over HTTP.

mod support;

use std::time::Instant;

use support::*;

fn config(dir: &std::path::Path, port: u16, cameras: &[(&str, u32)]) {
    let cameras: Vec<String> = cameras
        .iter()
        .map(|(id, interval)| camera(id, &media(STREET), &format!("interval = {interval}\n")))
        .collect();
    write_config(dir, port, &cameras);
}

fn ids(serve: &Serve) -> Vec<String> {
    serve.cameras()["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sighup_touches_only_what_changed() {
    let dir = TempDir::new("reload");
    let port = free_port();
    let file = dir.join("serve.toml");
    config(&dir, port, &[("a", 1), ("b", 1), ("d", 1)]);
    let mut serve = Serve::start(&file, port, &dir.join("serve.log"), &[]);
    wait_until("the three file cameras to finish", || {
        ["a", "b", "d"].iter().all(|c| serve.state(c) == "finished")
    });
    let a_before = serve.camera("a")["state_for_s"].as_f64().unwrap();

    // b changes, c is new, d goes, a stays as it was.
    config(&dir, port, &[("a", 1), ("b", 2), ("c", 1)]);
    let reloaded = Instant::now();
    serve.signal("HUP");
    wait_until("the reload", || {
        serve.metric("recognizer_config_reloads_total{result=\"ok\"}") == 1.0
    });
    wait_until("b and c to finish", || {
        ["b", "c"].iter().all(|c| serve.state(c) == "finished")
    });
    assert_eq!(ids(&serve), ["a", "b", "c"]);
    let a = serve.camera("a");
    assert!(
        a["state_for_s"].as_f64().unwrap() > a_before,
        "a was restarted: {a}"
    );
    let b = serve.camera("b");
    assert!(
        b["state_for_s"].as_f64().unwrap() <= reloaded.elapsed().as_secs_f64(),
        "b was not restarted: {b}"
    );
    let metrics = serve.get("/metrics").unwrap().1;
    assert!(!metrics.contains("camera=\"d\""), "d's series remain");
    assert!(metrics.contains("recognizer_frames_processed_total{camera=\"c\"} 5"));

    // An operator restarts one camera over HTTP; an unknown id is refused.
    let url = |id: &str| format!("http://127.0.0.1:{port}/api/v1/cameras/{id}/restart");
    assert_eq!(http_post(&url("a")), Some(202));
    assert_eq!(http_post(&url("nope")), Some(404));
    wait_until("a to run again and finish", || {
        serve.metric("recognizer_camera_restarts_total{camera=\"a\",reason=\"manual\"}") == 1.0
            && serve.state("a") == "finished"
    });

    // A broken file is refused; the cameras stay.
    std::fs::write(&file, "[[cameras]\n").unwrap();
    serve.signal("HUP");
    wait_until("the refused reload", || {
        serve.metric("recognizer_config_reloads_total{result=\"error\"}") == 1.0
    });
    assert_eq!(ids(&serve), ["a", "b", "c"]);
    assert!(
        serve
            .log_text()
            .contains("the configuration is invalid; the running one stays")
    );
    serve.signal("TERM");
    assert!(serve.wait().success());
}
