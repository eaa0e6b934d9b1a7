//! ByteTrack time per frame: the Rust core (`recognizer_core::bytetrack::ByteTracker::update`)
//! next to the Python reference (`tools/bytetrack_reference/`, the official code path), on the
//! same synthetic detection sequences, measured in one run.
//!
//! ```text
//! cargo bench --bench bytetrack -- [frames=N] [repeats=N] [python=PYTHON] [sizes=1,10,50,100]
//! ```
//! For each size N (detections per frame) a deterministic scene of N people walking with noisy
//! detections is generated (see [`scene`]); all sequences are written to one temporary file in
//! the reference's input format and `PYTHON tools/bytetrack_reference/bench_reference.py FILE`
//! times the reference's `update` calls (a warm-up pass, then `repeats` passes with a fresh
//! tracker each). The Rust tracker is timed the same way on the identical numbers (detections
//! rounded to 4 decimals, built before the clock starts). Both report the best of `repeats`
//! passes; both sides' track outputs are compared as a sanity check. project target: Rust at least
//! 20x faster.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use recognizer_core::bytetrack::{ByteTrackConfig, ByteTracker, Detection};
use serde_json::{Value, json};

const FRAME_RATE: f64 = 30.0;
const SCENE_W: f64 = 1920.0;
const SCENE_H: f64 = 1080.0;
/// Untimed warm-up frames on the Python side (a full pass on the Rust side costs nothing).
const PY_WARMUP_FRAMES: usize = 50;

/// splitmix64: a small deterministic generator (no dependency), with Box-Muller normals.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn normal(&mut self, sigma: f64) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

struct Person {
    cx: f64,
    cy: f64,
    vx: f64,
    vy: f64,
    h: f64,
    /// Typical detection score of this person (how visible they are).
    quality: f64,
}

fn round4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// `frames` frames with exactly `n` detections each, `[x1, y1, x2, y2, score]` rounded to 4
/// decimals, in a shuffled order (detector output order carries no identity).
///
/// N people (box height 90..320 px, width 0.41 h) walk over a 1920x1080 scene at up to 6 px per
/// frame, velocities drifting, bouncing off the borders. Each frame every person gives one box
/// with Gaussian corner noise (2% of its height) and a score: around the person's own quality
/// (0.55..0.95, sd 0.08) most of the time; in 12% of frames (occlusion, motion blur) in the
/// low band 0.1..0.5 that only the second association uses; in 3% under 0.1 (ignored by the
/// tracker: a miss). The high / low / ignored split (printed) is about 80 / 17 / 3%; track
/// births, losses and re-activations all happen, as with a real detector.
fn scene(n: usize, frames: usize, seed: u64) -> Vec<Vec<[f64; 5]>> {
    let mut rng = Rng(seed);
    let mut people: Vec<Person> = (0..n)
        .map(|_| {
            let h = rng.uniform(90.0, 320.0);
            Person {
                cx: rng.uniform(0.1, 0.9) * SCENE_W,
                cy: rng.uniform(0.2, 0.8) * SCENE_H,
                vx: rng.normal(2.0),
                vy: rng.normal(0.8),
                h,
                quality: rng.uniform(0.55, 0.95),
            }
        })
        .collect();
    let mut out = Vec::with_capacity(frames);
    for _ in 0..frames {
        let mut dets = Vec::with_capacity(n);
        for p in &mut people {
            p.vx = (p.vx + rng.normal(0.3)).clamp(-6.0, 6.0);
            p.vy = (p.vy + rng.normal(0.15)).clamp(-3.0, 3.0);
            p.cx += p.vx;
            p.cy += p.vy;
            let w = 0.41 * p.h;
            if p.cx < w / 2.0 || p.cx > SCENE_W - w / 2.0 {
                p.vx = -p.vx;
                p.cx = p.cx.clamp(w / 2.0, SCENE_W - w / 2.0);
            }
            if p.cy < p.h / 2.0 || p.cy > SCENE_H - p.h / 2.0 {
                p.vy = -p.vy;
                p.cy = p.cy.clamp(p.h / 2.0, SCENE_H - p.h / 2.0);
            }
            let sigma = 0.02 * p.h;
            let x1 = p.cx - w / 2.0 + rng.normal(sigma);
            let y1 = p.cy - p.h / 2.0 + rng.normal(sigma);
            let x2 = p.cx + w / 2.0 + rng.normal(sigma);
            let y2 = p.cy + p.h / 2.0 + rng.normal(sigma);
            let r = rng.unit();
            let score = if r < 0.03 {
                rng.uniform(0.01, 0.1)
            } else if r < 0.15 {
                rng.uniform(0.1, 0.5)
            } else {
                (p.quality + rng.normal(0.08)).clamp(0.3, 0.99)
            };
            dets.push([
                round4(x1),
                round4(y1),
                round4(x2),
                round4(y2),
                round4(score),
            ]);
        }
        for i in (1..dets.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            dets.swap(i, j);
        }
        out.push(dets);
    }
    out
}

struct RustResult {
    runs_us: Vec<f64>,
    outputs: usize,
    max_id: u64,
}

/// One pass with a fresh tracker: nanoseconds inside `update`, outputs, highest id output.
fn rust_pass(frames: &[Vec<Detection>]) -> (u128, usize, u64) {
    let mut tracker = ByteTracker::new(ByteTrackConfig {
        frame_rate: FRAME_RATE,
        ..Default::default()
    });
    let (mut outputs, mut max_id, mut ns) = (0usize, 0u64, 0u128);
    for dets in frames {
        let start = Instant::now();
        let tracks = tracker.update(dets);
        ns += start.elapsed().as_nanos();
        outputs += tracks.len();
        max_id = tracks.iter().map(|t| t.id).fold(max_id, u64::max);
        std::hint::black_box(&tracks);
    }
    (ns, outputs, max_id)
}

fn rust_bench(seq: &[Vec<[f64; 5]>], repeats: usize) -> RustResult {
    let frames: Vec<Vec<Detection>> = seq
        .iter()
        .map(|f| {
            f.iter()
                .enumerate()
                .map(|(k, d)| Detection::new([d[0], d[1], d[2], d[3]], d[4], k))
                .collect()
        })
        .collect();
    rust_pass(&frames); // warm-up
    let mut runs_us = Vec::new();
    let (mut outputs, mut max_id) = (0, 0);
    for _ in 0..repeats {
        let (ns, o, m) = rust_pass(&frames);
        runs_us.push(ns as f64 / 1e3 / frames.len() as f64);
        (outputs, max_id) = (o, m);
    }
    RustResult {
        runs_us,
        outputs,
        max_id,
    }
}

/// Runs the Python reference's timer; `Err` says why there are no Python figures.
fn python_bench(python: &str, file: &Path) -> Result<Value, String> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/bytetrack_reference/bench_reference.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(file)
        .output()
        .map_err(|e| format!("could not run '{python}': {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "{} {} failed ({}){}",
            python,
            script.display(),
            out.status,
            if stderr.trim().is_empty() {
                String::new()
            } else {
                format!(":\n{}", stderr.trim_end())
            }
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "unreadable output from bench_reference.py ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn main() {
    let arg = recognizer::bench_arg;
    let frames: usize = arg("frames")
        .map(|v| v.parse().expect("frames=N"))
        .unwrap_or(300);
    let repeats: usize = arg("repeats")
        .map(|v| v.parse().expect("repeats=N"))
        .unwrap_or(3)
        .max(1);
    let python = arg("python").unwrap_or_else(|| "python3".into());
    let sizes: Vec<usize> = arg("sizes")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().parse().expect("sizes=1,10,50,100"))
                .collect()
        })
        .unwrap_or_else(|| vec![1, 10, 50, 100]);

    let scenes: Vec<(usize, Vec<Vec<[f64; 5]>>)> = sizes
        .iter()
        .map(|&n| (n, scene(n, frames, 0x0B17_E7AC + n as u64)))
        .collect();

    // The same numbers for Python: f64 written by serde_json round-trip exactly.
    let file: PathBuf =
        std::env::temp_dir().join(format!("bytetrack_bench_{}.json", std::process::id()));
    let doc = json!({
        "repeats": repeats,
        "warmup_frames": PY_WARMUP_FRAMES,
        "sequences": scenes.iter().map(|(n, seq)| json!({
            "name": format!("bench_{n}"),
            "frame_rate": FRAME_RATE,
            "frames": seq,
        })).collect::<Vec<_>>(),
    });
    {
        let mut fh =
            std::io::BufWriter::new(std::fs::File::create(&file).expect("temporary sequence file"));
        serde_json::to_writer(&mut fh, &doc).unwrap();
        fh.flush().unwrap();
    }

    let (mut high, mut low, mut total) = (0usize, 0usize, 0usize);
    for d in scenes.iter().flat_map(|(_, s)| s.iter().flatten()) {
        total += 1;
        high += (d[4] > 0.5) as usize;
        low += (d[4] > 0.1 && d[4] <= 0.5) as usize;
    }
    let pct = |c: usize| 100.0 * c as f64 / total.max(1) as f64;
    println!(
        "bytetrack: {frames} frames per size, {repeats} timed passes after a warm-up (best pass reported); \
         synthetic walkers, scores {:.0}% high (> 0.5) / {:.0}% low band / {:.0}% under 0.1",
        pct(high),
        pct(low),
        pct(total - high - low)
    );
    let rust: Vec<RustResult> = scenes
        .iter()
        .map(|(_, seq)| rust_bench(seq, repeats))
        .collect();
    let started = Instant::now();
    let py = python_bench(&python, &file);
    let _ = std::fs::remove_file(&file);
    let py_results: Option<Vec<Value>> = match &py {
        Ok(v) => {
            println!(
                "Python reference: python {}, numpy {}, scipy {}, lap (lapx) {}; took {:.1} s",
                v["python"].as_str().unwrap_or("?"),
                v["numpy"].as_str().unwrap_or("?"),
                v["scipy"].as_str().unwrap_or("?"),
                v["lap"].as_str().unwrap_or("?"),
                started.elapsed().as_secs_f64()
            );
            v["results"].as_array().cloned()
        }
        Err(e) => {
            println!("Python reference NOT measured: {e}");
            println!(
                "  (install its dependencies: python3 -m pip install -r tools/bytetrack_reference/requirements.txt; \
                 Rust figures below only)"
            );
            None
        }
    };

    println!();
    println!(
        "{:>10} {:>16} {:>18} {:>9}  same outputs",
        "detections", "Rust us/frame", "Python us/frame", "ratio"
    );
    let mut all_same = true;
    for (k, ((n, _), r)) in scenes.iter().zip(&rust).enumerate() {
        let rust_us = best(&r.runs_us);
        let p = py_results.as_ref().and_then(|v| v.get(k));
        let (py_col, ratio_col, same_col) = match p {
            Some(p) => {
                let py_us = p["best_us_per_frame"].as_f64().unwrap_or(f64::NAN);
                let same = p["outputs"].as_u64() == Some(r.outputs as u64)
                    && p["ids"].as_u64() == Some(r.max_id);
                all_same &= same;
                (
                    format!("{py_us:.1}"),
                    format!("{:.0}x", py_us / rust_us),
                    if same {
                        format!("yes ({} outputs, {} ids)", r.outputs, r.max_id)
                    } else {
                        format!(
                            "NO: Rust {}/{}, Python {}/{}",
                            r.outputs, r.max_id, p["outputs"], p["ids"]
                        )
                    },
                )
            }
            None => (
                "-".into(),
                "-".into(),
                format!("({} outputs, {} ids)", r.outputs, r.max_id),
            ),
        };
        println!("{n:>10} {rust_us:>16.2} {py_col:>18} {ratio_col:>9}  {same_col}");
    }
    if py_results.is_some() {
        println!();
        println!("project target: Rust >= 20x faster than the Python reference at every size.");
        if !all_same {
            println!(
                "WARNING: the two trackers' outputs differ on a bench sequence (see core/tests/bytetrack_reference.rs)"
            );
        }
    }
}
