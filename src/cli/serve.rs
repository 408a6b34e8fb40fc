//! `synthscan serve`: the scoring service for call-centre pipelines.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;

use synthscan::service::{self, ConnectionLimits, ServiceConfig, UploadLimits};

use super::{AlertArgs, DetectorArgs};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback requires a token.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Bearer token clients must send (`Authorization: Bearer T`, or `?token=T` on the
    /// WebSocket URL). Default: $SYNTHSCAN_TOKEN.
    #[arg(long, value_name = "T", env = "SYNTHSCAN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Scoring threads, each with its own ONNX Runtime session (default: all cores).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Most concurrent WebSocket streams; more are refused with 503.
    #[arg(long, value_name = "N", default_value_t = 512)]
    max_streams: usize,
    /// Most open TCP connections; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// Seconds a connection has to send a complete request head (also the most a kept-alive
    /// connection may sit idle between requests).
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    header_seconds: f64,
    /// Decoded stream audio waiting to be scored, over all streams, in MB (4 bytes a sample);
    /// a stream over its share is read more slowly.
    #[arg(long, value_name = "MB", default_value_t = 512)]
    max_buffered_mb: usize,
    /// Largest upload to POST /v1/analyze, in MB.
    #[arg(long, value_name = "MB", default_value_t = 100)]
    max_body_mb: usize,
    /// Seconds a client has to send an upload's whole body.
    #[arg(long, value_name = "S", default_value_t = 120.0)]
    body_seconds: f64,
    /// Longest audio an upload may hold, in seconds of 48 kHz stereo (the limit is on samples:
    /// four times as long at 8 kHz mono... and so on).
    #[arg(long, value_name = "S", default_value_t = 10800.0)]
    max_upload_seconds: f64,
    /// Seconds one upload's analysis may take once it has a worker.
    #[arg(long, value_name = "S", default_value_t = 120.0)]
    analysis_seconds: f64,
    /// Close a stream that sends no audio for this many seconds (pings do not count).
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    idle_seconds: f64,
    /// On Ctrl-C/SIGTERM, let open calls go on this long before summarising and closing them.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    drain_seconds: f64,
    #[command(flatten)]
    alerts: AlertArgs,
    #[command(flatten)]
    detector: DetectorArgs,
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    for (name, value) in [
        ("--idle-seconds", args.idle_seconds),
        ("--header-seconds", args.header_seconds),
        ("--body-seconds", args.body_seconds),
        ("--max-upload-seconds", args.max_upload_seconds),
        ("--analysis-seconds", args.analysis_seconds),
    ] {
        if !(value.is_finite() && value > 0.0 && value < 1e7) {
            bail!("{name} must be a positive number of seconds");
        }
    }
    if !(args.drain_seconds.is_finite() && (0.0..1e7).contains(&args.drain_seconds)) {
        bail!("--drain-seconds must not be negative");
    }
    if args.max_connections == 0 || args.max_streams == 0 {
        bail!("--max-connections and --max-streams must be at least 1");
    }
    let policy = args.alerts.policy()?;
    let (model, detector) = args.detector.build()?;
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = ServiceConfig {
        listen: args.listen,
        token: args.token,
        workers,
        max_streams: args.max_streams,
        connections: ConnectionLimits {
            max_connections: args.max_connections,
            header_timeout: Duration::from_secs_f64(args.header_seconds),
        },
        max_buffered_samples: args.max_buffered_mb.saturating_mul(1 << 18),
        uploads: UploadLimits {
            max_body_bytes: args.max_body_mb.saturating_mul(1 << 20),
            body_timeout: Duration::from_secs_f64(args.body_seconds),
            max_samples: (args.max_upload_seconds * 96_000.0) as u64,
            analysis_timeout: Duration::from_secs_f64(args.analysis_seconds),
        },
        idle_timeout: Duration::from_secs_f64(args.idle_seconds),
        drain_timeout: Duration::from_secs_f64(args.drain_seconds),
        policy,
    };
    let max_streams = config.max_streams;
    service::run(config, model, detector, |addr| {
        eprintln!("synthscan: serving on http://{addr} ({workers} scoring workers, at most {max_streams} streams)");
    })?;
    Ok(ExitCode::SUCCESS)
}
