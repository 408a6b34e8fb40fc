//! `synthscan serve`: the scoring service for call-centre pipelines.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;

use synthscan::service::{self, ServiceConfig};
use synthscan::{Detector, LivePolicy};

use super::ModelArgs;

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
    /// Probability at or above which speech is called synthetic, for every input rate (default:
    /// the model's, one for wideband input and one for input at <= 8 kHz).
    #[arg(long, value_name = "P")]
    threshold: Option<f64>,
    /// Milliseconds of audio between two score updates on a stream.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    update_ms: u32,
    /// Seconds a stream's live score must stay at or above the threshold before an alert is
    /// raised: longer means fewer false alarms on genuine callers and later alerts on
    /// synthetic ones.
    #[arg(long, value_name = "S", default_value_t = LivePolicy::default().raise_hold_s)]
    alert_hold_seconds: f64,
    /// How far (in probability) above the threshold the live score must be to raise an alert;
    /// 0 raises at the threshold itself.
    #[arg(long, value_name = "P", default_value_t = LivePolicy::default().raise_margin)]
    alert_margin: f64,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    if !(args.idle_seconds.is_finite()
        && args.idle_seconds > 0.0
        && args.drain_seconds.is_finite()
        && args.drain_seconds >= 0.0)
    {
        bail!("--idle-seconds must be positive and --drain-seconds not negative");
    }
    if args.update_ms < 10 || args.update_ms > 10_000 {
        bail!("--update-ms must be in 10..=10000");
    }
    let model = args.model.load()?;
    let mut detector = Detector::new(model.manifest.clone())?;
    if let Some(t) = args.threshold {
        detector = detector.with_threshold(t)?;
    }
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
        policy: LivePolicy {
            update_interval_s: f64::from(args.update_ms) / 1e3,
            raise_hold_s: args.alert_hold_seconds,
            raise_margin: args.alert_margin,
            ..LivePolicy::default()
        },
    };
    // Checked here so that a bad value stops the server instead of failing every stream.
    config.policy.validate()?;
    let max_streams = config.max_streams;
    service::run(config, model, detector, |addr| {
        eprintln!("synthscan: serving on http://{addr} ({workers} scoring workers, at most {max_streams} streams)");
    })?;
    Ok(ExitCode::SUCCESS)
}
