//! How `recognizer-serve --shard I/N` spreads cameras over replicas: the balance of 1,000
//! camera ids (`cam-0000` .. `cam-0999`) over 3, 8 and 20 replicas, and what moves when one
//! replica is added. Prints the Markdown table of README "Run as a service".
//!
//! ```text
//! cargo run --release -p recognizer-serve --example shard_balance
//! ```

use recognizer_serve::shard::{balance, moves};

fn main() {
    let ids: Vec<String> = (0..1000).map(|i| format!("cam-{i:04}")).collect();
    let ids = || ids.iter().map(String::as_str);
    println!(
        "| replicas | cameras per replica (min / mean / max) | largest / mean | adding one replica moves | of which to a replica other than the new one |"
    );
    println!("|---|---|---|---|---|");
    for n in [3u32, 8, 20] {
        let per = balance(ids(), n);
        let (min, max) = (per.iter().min().unwrap(), per.iter().max().unwrap());
        let mean = 1000.0 / n as f64;
        let (moved, elsewhere) = moves(ids(), n);
        println!(
            "| {n} | {min} / {mean:.1} / {max} | {:.2} | {moved} cameras ({:.1} %; ideal 1/{} = {:.1} %) | {elsewhere} |",
            *max as f64 / mean,
            moved as f64 / 10.0,
            n + 1,
            100.0 / (n + 1) as f64
        );
    }
    for n in [3u32, 8] {
        println!("\n{n} replicas: {:?}", balance(ids(), n));
    }
}
