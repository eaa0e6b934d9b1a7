//! A real Prometheus (Debian's `prometheus`) scrapes a running service with two file cameras
//! and loads the alert rules of deploy/; the test asks Prometheus' HTTP API and finds the
//! processed frames of both cameras growing and the fall event of the falling clip counted.

mod support;

use std::process::{Child, Command, Stdio};

use support::*;

struct Prometheus {
    child: Child,
    port: u16,
}

impl Prometheus {
    fn start(dir: &std::path::Path, target_port: u16) -> Prometheus {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: recognizer
    static_configs:
      - targets: ["127.0.0.1:{target_port}"]
"#,
                rules = repo().join("deploy/prometheus/alerts.yml").display()
            ),
        )
        .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus (Debian package prometheus, installed by scripts/setup)");
        let prometheus = Prometheus { child, port };
        wait_until("Prometheus to be ready", || {
            http_get(&format!("http://127.0.0.1:{port}/-/ready")).is_some_and(|(c, _)| c == 200)
        });
        prometheus
    }

    fn api(&self, path: &str) -> serde_json::Value {
        let (code, body) =
            http_get(&format!("http://127.0.0.1:{}{path}", self.port)).expect("Prometheus answers");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The value of an instant query's single series, `None` when it has none.
    fn value(&self, query: &str) -> Option<f64> {
        let q: String = query
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let answer = self.api(&format!("/api/v1/query?query={q}"));
        let result = answer["data"]["result"].as_array()?.first()?.clone();
        result["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_scrapes_both_cameras_and_the_fall_event() {
    let dir = TempDir::new("prometheus");
    let port = free_port();
    let config = write_config(
        &dir,
        port,
        &[
            camera(
                "cam0",
                &media(FALLING),
                &format!(
                    "at-end = \"restart\"\nexpected-fps = 1\n{}",
                    fall_sections()
                ),
            ),
            camera(
                "cam1",
                &media(DRINKING),
                "at-end = \"restart\"\ninterval = 3\n",
            ),
        ],
    );
    let serve = Serve::start(&config, port, &dir.join("serve.log"), &[]);
    let prometheus = Prometheus::start(&dir, port);

    let frames = |camera: &str| {
        prometheus.value(&format!(
            "recognizer_frames_processed_total{{camera=\"{camera}\"}}"
        ))
    };
    wait_until("Prometheus to hold frames of both cameras", || {
        frames("cam0").unwrap_or(0.0) > 0.0 && frames("cam1").unwrap_or(0.0) > 0.0
    });
    let first = (frames("cam0").unwrap(), frames("cam1").unwrap());
    wait_until("the fall event of cam0 in Prometheus", || {
        prometheus
            .value("sum(recognizer_events_total{camera=\"cam0\",type=\"fall\"})")
            .unwrap_or(0.0)
            >= 1.0
    });
    wait_until("both cameras' frames to grow in Prometheus", || {
        frames("cam0").unwrap() > first.0 && frames("cam1").unwrap() > first.1
    });
    let rate = prometheus
        .value("sum(rate(recognizer_frames_processed_total[30s]))")
        .unwrap_or(0.0);
    println!(
        "Prometheus: cam0 {} -> {} frames, cam1 {} -> {}, {rate:.2} frames/s together; fall events of cam0: {:?}",
        first.0,
        frames("cam0").unwrap(),
        first.1,
        frames("cam1").unwrap(),
        prometheus.value("sum(recognizer_events_total{camera=\"cam0\",type=\"fall\"})")
    );
    // The drink-water clip raises no fall event.
    assert_eq!(
        prometheus.value("sum(recognizer_events_total{camera=\"cam1\"})"),
        None
    );
    // cam1 runs pose on every third frame: it says so, and counts the frames passed without it
    // (two of every three); cam0 at the default interval skips none.
    assert_eq!(
        prometheus.value("recognizer_pose_interval{camera=\"cam1\"}"),
        Some(3.0)
    );
    assert_eq!(
        prometheus.value("recognizer_pose_interval_configured{camera=\"cam1\"}"),
        Some(3.0)
    );
    let skipped = prometheus
        .value("recognizer_frames_skipped_total{camera=\"cam1\"}")
        .unwrap_or(0.0);
    let inferred = prometheus
        .value("recognizer_pose_inferences_total{camera=\"cam1\"}")
        .unwrap_or(0.0);
    assert!(
        inferred > 0.0 && skipped >= inferred,
        "cam1: {skipped} frames skipped, {inferred} inferred at interval 3"
    );
    assert_eq!(
        prometheus.value("recognizer_frames_skipped_total{camera=\"cam0\"}"),
        Some(0.0)
    );
    // Both cameras were up in the last 30 s (a looped file is down for a moment at each
    // restart), and the alert rules of deploy/ load and evaluate.
    assert_eq!(
        prometheus.value("count(max_over_time(recognizer_camera_up[30s]) == 1)"),
        Some(2.0)
    );
    let rules = prometheus.api("/api/v1/rules");
    let loaded: Vec<&serde_json::Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(loaded.len(), 7, "{rules}");
    assert!(loaded.iter().all(|r| r["health"] == "ok"), "{rules}");
    drop(serve);
}
