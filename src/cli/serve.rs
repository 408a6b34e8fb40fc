//! `synthscan serve`: the scoring service for call-centre pipelines.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;

use synthscan::service::{self, ServiceConfig};

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
    /// Largest upload to POST /v1/analyze, in MB.
    #[arg(long, value_name = "MB", default_value_t = 100)]
    max_body_mb: usize,
    /// Close a stream that sends nothing for this many seconds.
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
    if !(args.idle_seconds.is_finite()
        && args.idle_seconds > 0.0
        && args.drain_seconds.is_finite()
        && args.drain_seconds >= 0.0)
    {
        bail!("--idle-seconds must be positive and --drain-seconds not negative");
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
        max_body_bytes: args.max_body_mb.saturating_mul(1 << 20),
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
