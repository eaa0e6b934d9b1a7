//! `recognizer-serve`: see the crate documentation and README "Run as a service".

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use recognizer_serve::{check, config, http::HttpServer, logging, service::Service, shard::Shard};
use signal_hook::{
    consts::{SIGHUP, SIGINT, SIGTERM},
    iterator::Signals,
};

/// Recognizer as a service: many cameras, each restarted alone when it fails, with Prometheus
/// metrics and health endpoints on one HTTP port.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML)
    #[arg(long, short, value_name = "FILE", required_unless_present = "check")]
    config: Option<PathBuf>,
    /// Check FILE (syntax, keys, paths, element settings, rules) and exit: 0 when valid, 1 with
    /// one error per line (file:line:column: key: message)
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check: Option<PathBuf>,
    /// Run only the cameras of replica I of N (0-based), e.g. 0/3
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    shard: Option<String>,
    /// Number of replicas; this replica's index is the ordinal that ends the host name, as in a
    /// Kubernetes StatefulSet (recognizer-2 -> 2)
    #[arg(long, value_name = "N", env = "RECOGNIZER_SHARDS")]
    shards: Option<u32>,
    /// HTTP listen address, overriding service.listen (e.g. 0.0.0.0:9464)
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Exit once every camera is finished (files with at-end = "stop") or disabled: 0 when all
    /// finished, 1 otherwise (batch processing of recordings)
    #[arg(long)]
    exit_when_done: bool,
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn shard(cli: &Cli) -> Result<Shard, String> {
    match (&cli.shard, cli.shards) {
        (Some(s), _) => Shard::parse(s),
        (None, Some(n)) => Shard::from_hostname(&hostname(), n),
        (None, None) => Ok(Shard::ALL),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let shard = match shard(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("recognizer-serve: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = recognizer_serve::init() {
        eprintln!("recognizer-serve: {e}");
        return ExitCode::from(1);
    }
    let file = cli.check.clone().or(cli.config.clone()).unwrap();
    let mut config = match config::load(&file) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(if cli.check.is_some() { 1 } else { 2 });
        }
    };
    if let Some(listen) = &cli.listen {
        config.service.listen = listen.clone();
    }
    if cli.check.is_some() {
        let errors = check::check(&config);
        if !errors.is_empty() {
            for e in &errors {
                eprintln!("{e}");
            }
            return ExitCode::from(1);
        }
        let mine: Vec<&str> = config
            .cameras
            .iter()
            .filter(|c| c.enabled && shard.owns(&c.id))
            .map(|c| c.id.as_str())
            .collect();
        println!(
            "{}: ok, {} cameras; replica {shard} runs {}: {}",
            file.display(),
            config.cameras.len(),
            mine.len(),
            mine.join(", ")
        );
        return ExitCode::SUCCESS;
    }
    run(config, shard, cli.exit_when_done)
}

fn run(config: config::Config, shard: Shard, exit_when_done: bool) -> ExitCode {
    logging::init(config.service.log_format, config.service.log_level);
    logging::bridge_gstreamer();
    // Signals are caught before anything starts, so an early SIGTERM is not lost.
    let mut signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return ExitCode::from(1);
        }
    };
    let file = config.file.clone();
    let listen = config.service.listen.clone();
    let service = Service::start(config, shard);
    let http = match HttpServer::start(&listen, service.clone()) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve HTTP");
            service.shutdown();
            return ExitCode::from(1);
        }
    };
    loop {
        for signal in signals.pending() {
            if signal == SIGHUP {
                match config::load(&file) {
                    Ok(new) => service.reload(new),
                    Err(errors) => {
                        service.reload_failed();
                        tracing::error!(
                            errors = %errors,
                            "the configuration is invalid; the running one stays"
                        );
                    }
                }
                continue;
            }
            tracing::info!(signal, "shutting down: end of stream into every camera");
            let clean = service.shutdown();
            http.stop();
            if clean {
                tracing::info!("stopped");
                return ExitCode::SUCCESS;
            }
            tracing::error!("some cameras did not stop before the shutdown deadline");
            return ExitCode::from(1);
        }
        if exit_when_done && let Some(all_finished) = service.done() {
            service.shutdown();
            http.stop();
            tracing::info!(all_finished, "every camera is done");
            return if all_finished {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
