//! Leaks under the service: 50 forced restarts of one camera, then a 10,000-frame run of two
//! cameras; the service process's resident memory, open file descriptors and threads along
//! the way (they must stay flat). Figures for README "Run as a service".
//!
//! ```text
//! cargo bench -p recognizer-serve --bench soak [-- restarts=50 frames=10000 cameras=2]
//! ```
//! `cameras=1` runs cam0 alone, so each sample is taken with nothing else in flight: what grows
//! from restart to restart is then the restarts' own cost, not the other camera's loops.
//! Cameras: 340x256 clips (skateboarding, clean-and-jerk) looped by restarting at their end,
//! pose every 10th frame on a shared session, the fall classifier and rule on both.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

/// Resident memory (MiB), open file descriptors and threads of `pid`.
fn usage(pid: u32) -> (f64, usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (
        field("VmRSS:") as f64 / 1024.0,
        fds,
        field("Threads:") as usize,
    )
}

/// A looped camera on `clip` with the fall classifier.
fn looped(id: &str, clip: &str, interval: u32) -> String {
    camera(
        id,
        &media(clip),
        &format!(
            "at-end = \"restart\"\ninterval = {interval}\n{}",
            fall_sections()
        ),
    )
}

fn frames(serve: &Serve, id: &str) -> f64 {
    serve.metric(&format!(
        "recognizer_frames_processed_total{{camera=\"{id}\"}}"
    ))
}

fn main() {
    let restarts: u64 = bench_arg("restarts", "50").parse().unwrap();
    let target: f64 = bench_arg("frames", "10000").parse().unwrap();
    let cameras: usize = bench_arg("cameras", "2").parse().unwrap();
    assert!(
        cameras == 1 || cameras == 2,
        "cameras=1 (cam0 alone) or cameras=2"
    );
    let dir = TempDir::new("soak");
    let port = free_port();
    let all = [
        looped("cam0", "skateboarding.mp4", 10),
        looped("cam1", "clean_and_jerk.mp4", 10),
    ];
    let ids = ["cam0", "cam1"];
    let config = write_config(&dir, port, &all[..cameras]);
    let serve = Serve::start(&config, port, &dir.join("serve.log"), &[]);
    let pid = serve.child.id();
    wait_until("the cameras to run", || {
        ids[..cameras].iter().all(|id| frames(&serve, id) > 20.0)
    });

    // 1. Forced restarts of cam0 (cam1 runs on).
    let url = format!("http://127.0.0.1:{port}/api/v1/cameras/cam0/restart");
    let manual = "recognizer_camera_restarts_total{camera=\"cam0\",reason=\"manual\"}";
    let mut samples = Vec::new();
    for k in 1..=restarts {
        let before = frames(&serve, "cam0");
        assert_eq!(http_post(&url), Some(202));
        wait_until("the restart", || serve.metric(manual) >= k as f64);
        wait_until("cam0 to run again", || {
            frames(&serve, "cam0") > before + 5.0
        });
        if k == 5 || k % 10 == 0 || k == restarts {
            let (rss, fds, threads) = usage(pid);
            println!("restart {k:3}: {rss:7.1} MiB, {fds} fds, {threads} threads");
            samples.push((k, rss, fds, threads));
        }
    }
    if let (Some(&first), Some(&last)) = (samples.first(), samples.last()) {
        println!(
            "restarts {}..{}: RSS {:+.1} MiB, fds {:+}, threads {:+}",
            first.0,
            last.0,
            last.1 - first.1,
            last.2 as i64 - first.2 as i64,
            last.3 as i64 - first.3 as i64
        );
    }

    if target == 0.0 || cameras == 1 {
        return;
    }
    // 2. Both cameras to `target` frames each (counted from here).
    let start = (frames(&serve, "cam0"), frames(&serve, "cam1"));
    let done =
        |n: f64| frames(&serve, "cam0") - start.0 >= n && frames(&serve, "cam1") - start.1 >= n;
    let began = std::time::Instant::now();
    let mut run = Vec::new();
    for checkpoint in [1000.0, target / 2.0, target] {
        // A hang guard only: two hours for 10,000 frames on a machine shared with builds.
        wait_until_within(Duration::from_secs(7200), "the frame checkpoint", || {
            done(checkpoint)
        });
        let (rss, fds, threads) = usage(pid);
        println!(
            "frames {checkpoint:6.0} per camera: {rss:7.1} MiB, {fds} fds, {threads} threads ({:.0} s)",
            began.elapsed().as_secs_f64()
        );
        run.push((rss, fds, threads));
    }
    let loops = serve.metric("recognizer_camera_restarts_total{camera=\"cam1\",reason=\"loop\"}");
    println!(
        "frames 1000..{target:.0}: RSS {:+.1} MiB, fds {:+}, threads {:+}; cam1 looped {loops} times",
        run[2].0 - run[0].0,
        run[2].1 as i64 - run[0].1 as i64,
        run[2].2 as i64 - run[0].2 as i64,
    );
}
