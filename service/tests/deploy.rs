//! The deployment files under deploy/: Kubernetes manifests validated against the Kubernetes
//! API schemas (kubernetes-validate from PyPI, which bundles them), the ConfigMap's TOML
//! checked by `recognizer-serve --check`, the Prometheus configuration and alert rules by
//! `promtool` (with a firing and a non-firing case per alert), every metric the rules and the
//! Grafana dashboard name exists, and the Dockerfiles install the package list scripts/setup
//! reads.

mod support;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use support::*;

fn deploy(path: &str) -> PathBuf {
    repo().join("deploy").join(path)
}

fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{command:?} failed:\n{text}");
    text
}

/// A virtual environment under target/ with kubernetes-validate (and PyYAML), made once.
fn validators() -> PathBuf {
    // The tests of this file run in parallel: one of them makes the environment.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = repo().join("target/validators");
    let tool = venv.join("bin/kubernetes-validate");
    if !tool.is_file() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        run(Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "kubernetes-validate==1.37.0",
        ]));
    }
    venv
}

#[test]
fn kubernetes_manifests_match_the_api_schemas() {
    let venv = validators();
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(deploy("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 5, "{manifests:?}");
    let out = run(Command::new(venv.join("bin/kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", "1.37.0"])
        .args(&manifests));
    println!("{out}");
    for m in &manifests {
        assert!(
            out.contains(&format!("{} passed", m.display())),
            "{} not validated:\n{out}",
            m.display()
        );
    }
    // The validator does reject a wrong manifest (a string where an integer belongs).
    let dir = TempDir::new("k8s");
    let bad = dir.join("bad.yaml");
    let text = std::fs::read_to_string(deploy("kubernetes/statefulset.yaml"))
        .unwrap()
        .replace("replicas: 3", "replicas: three");
    std::fs::write(&bad, text).unwrap();
    let status = Command::new(venv.join("bin/kubernetes-validate"))
        .args(["--strict", "--quiet"])
        .arg(&bad)
        .output()
        .unwrap()
        .status;
    assert!(!status.success());
}

#[test]
fn the_configmap_holds_a_valid_configuration() {
    let venv = validators();
    let dir = TempDir::new("configmap");
    let toml = dir.join("serve.toml");
    run(Command::new(venv.join("bin/python")).args([
        "-c",
        "import sys, yaml; open(sys.argv[2], 'w').write(yaml.safe_load(open(sys.argv[1]))['data']['serve.toml'])",
        &deploy("kubernetes/configmap.yaml").display().to_string(),
        &toml.display().to_string(),
    ]));
    let out = run(Command::new(env!("CARGO_BIN_EXE_recognizer-serve"))
        .arg("--check")
        .arg(&toml)
        .args(["--shard", "1/3"])
        // Where the image and the models volume put the models.
        .env("RECOGNIZER_POSE_MODELS", data_dir().join("models/pose"))
        .env("RECOGNIZER_ACTION_MODELS", repo().join("models"))
        .env("WEBHOOK_TOKEN", "Bearer t")
        .env("MQTT_PASSWORD", "p"));
    assert!(out.contains("ok, 4 cameras; replica 1/3 runs"), "{out}");
}

#[test]
fn promtool_checks_the_scrape_config_and_tests_every_alert() {
    run(Command::new("promtool")
        .args(["check", "config"])
        .arg(deploy("prometheus/prometheus.yml")));
    run(Command::new("promtool")
        .args(["check", "rules"])
        .arg(deploy("prometheus/alerts.yml")));
    let out = run(Command::new("promtool")
        .args(["test", "rules"])
        .arg(deploy("prometheus/alerts.test.yml")));
    assert!(out.contains("SUCCESS"), "{out}");

    // Every alert has a case where it fires and one where it stays silent.
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(deploy("prometheus/alerts.test.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 7);
    for alert in alerts {
        let cases: Vec<&str> = tests
            .split("alertname: ")
            .skip(1)
            .filter(|c| c.starts_with(alert))
            .collect();
        assert!(
            cases.iter().any(|c| c.contains("exp_labels")),
            "{alert} has no firing case"
        );
        assert!(
            cases.iter().any(|c| c.contains("exp_alerts: []")),
            "{alert} has no silent case"
        );
    }
}

/// `recognizer_...` names in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("recognizer_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn rules_and_dashboard_name_only_metrics_the_service_has() {
    let metrics = recognizer_serve::metrics::Metrics::new();
    let id = "cam0";
    let label = recognizer_serve::metrics::Metrics::camera(id);
    metrics.set_state(id, "running", true);
    metrics.restart(id, "error");
    metrics.event(id, "fall");
    metrics.deliveries(id, "all", "delivered", 1);
    metrics.spooled(id, "webhook", 1);
    metrics.frame_errors(id, "rtmopose", 0);
    metrics.provider(id, "rtmopose", "CPUExecutionProvider");
    metrics.expected_fps.get_or_create(&label).set(5.0);
    for family in [
        &metrics.frames_in,
        &metrics.frames_processed,
        &metrics.frames_dropped,
        &metrics.pose_inferences,
        &metrics.frames_skipped,
    ] {
        family.get_or_create(&label).inc();
    }
    metrics.pose_interval.get_or_create(&label).set(2);
    metrics
        .pose_interval_configured
        .get_or_create(&label)
        .set(1);
    for family in [
        &metrics.pose_seconds,
        &metrics.action_seconds,
        &metrics.latency_seconds,
        &metrics.processing_seconds,
    ] {
        family.get_or_create(&label).observe(0.1);
    }
    metrics.persons.get_or_create(&label).set(1);
    metrics.active_tracks.get_or_create(&label).set(1);
    let exposed = metric_names(&metrics.encode());
    let grafana = std::fs::read_to_string(deploy("grafana/recognizer.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&grafana).unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() >= 10);
    for (file, text) in [
        ("grafana/recognizer.json", grafana.clone()),
        (
            "prometheus/alerts.yml",
            std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap(),
        ),
    ] {
        for name in metric_names(&text) {
            assert!(
                exposed.contains(&name),
                "{file} names {name}, which the service does not expose: {exposed:?}"
            );
        }
    }
}

/// The package names of `role` in scripts/apt-packages.txt.
fn packages(roles: &[&str]) -> Vec<String> {
    std::fs::read_to_string(repo().join("scripts/apt-packages.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (role, name) = (it.next()?, it.next()?);
            roles.contains(&role).then(|| name.to_string())
        })
        .collect()
}

#[test]
fn dockerfiles_share_the_package_list_with_setup() {
    let setup = std::fs::read_to_string(repo().join("scripts/setup")).unwrap();
    assert!(setup.contains("scripts/apt-packages.txt"));
    assert!(
        !setup.contains("APT_PACKAGES=("),
        "setup keeps a list of its own"
    );
    for runtime in ["gstreamer1.0-plugins-good", "gstreamer1.0-libav", "curl"] {
        assert!(packages(&["runtime"]).contains(&runtime.to_string()));
    }
    assert!(packages(&["test"]).contains(&"prometheus".to_string()));
    for file in ["Dockerfile", "Dockerfile.cuda"] {
        let text = std::fs::read_to_string(deploy(file)).unwrap();
        // The build stage runs scripts/setup itself; the image installs the runtime role.
        assert!(
            text.contains("RUN scripts/setup ") && text.contains(" --no-data"),
            "{file}"
        );
        assert!(
            text.contains("awk '$1 == \"runtime\" { print $2 }' /tmp/apt-packages.txt"),
            "{file}"
        );
        assert!(!text.contains("apt-get install -y gstreamer"), "{file}");
        for needed in ["USER recognizer", "HEALTHCHECK", "/live", "ORT_DYLIB_PATH"] {
            assert!(text.contains(needed), "{file} lacks {needed}");
        }
    }
    // The CUDA image takes ONNX Runtime's CUDA build and the NVIDIA libraries from setup too.
    let cuda = std::fs::read_to_string(deploy("Dockerfile.cuda")).unwrap();
    assert!(cuda.contains("RUN scripts/setup --gpu --no-data"));
    assert!(cuda.contains(".ort/gpu/cuda/lib/"));
    // What the runtime role holds is enough to run a camera: the elements the pipelines use
    // come from these packages (checked here on this machine, where they are installed).
    for element in [
        "uridecodebin",
        "videoconvert",
        "x264enc",
        "matroskamux",
        "avdec_h264",
    ] {
        let status = Command::new("gst-inspect-1.0")
            .arg(element)
            .output()
            .unwrap()
            .status;
        assert!(status.success(), "{element} missing");
    }
    assert!(Path::new(&deploy("Dockerfile.dockerignore")).is_file());
}
