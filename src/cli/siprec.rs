//! `synthscan siprec`: the SIPREC recording server for session border controllers and PBXs.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;

use synthscan::service::siprec::{self, Cidr, SiprecConfig, TlsConfig};

use super::{AlertArgs, DetectorArgs};

#[derive(Debug, Args)]
pub struct SiprecArgs {
    /// SIP address (UDP and TCP). Anything but loopback requires --allow.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5060")]
    listen: SocketAddr,
    /// Also take SIP over TLS on this address (5061 by convention), with --tls-cert and --tls-key.
    /// Anything but loopback requires --allow.
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    tls_listen: Option<SocketAddr>,
    /// The server's certificate chain for --tls-listen (PEM, leaf first).
    #[arg(long, value_name = "PEM", requires = "tls_listen")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of that certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "tls_listen")]
    tls_key: Option<std::path::PathBuf>,
    /// Addresses allowed to send SIP and RTP (and to read /healthz and /metrics): a block
    /// (10.0.0.0/8) or one address; repeat or separate with commas. Default: loopback only.
    #[arg(long, value_name = "CIDR", value_delimiter = ',', value_parser = parse_cidr)]
    allow: Vec<Cidr>,
    /// RTP ports for recorded streams, LO-HI (each stream takes an even port).
    #[arg(long, value_name = "LO-HI", default_value = "40000-49999", value_parser = parse_range)]
    rtp_ports: (u16, u16),
    /// Address for /healthz and Prometheus /metrics (none by default).
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Address put in the SDP answer and Contact (default: the listen address, or the local
    /// address that routes to the recording client when listening on a wildcard).
    #[arg(long, value_name = "IP")]
    media_address: Option<IpAddr>,
    /// Most calls recorded at once; more INVITEs get 503.
    #[arg(long, value_name = "N", default_value_t = 500)]
    max_calls: usize,
    /// End a call (with a BYE) when none of its streams has sent RTP for this many seconds.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    idle_seconds: f64,
    /// On Ctrl-C/SIGTERM, let open calls go on this long before ending them.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    drain_seconds: f64,
    /// Scoring threads, each with its own ONNX Runtime session (default: all cores).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Decoded audio waiting to be scored, over all calls, in MB (4 bytes a sample); beyond,
    /// RTP packets are dropped and counted.
    #[arg(long, value_name = "MB", default_value_t = 512)]
    max_buffered_mb: usize,
    /// Also POST every event to this http:// URL (JSON Lines, batched; a bounded queue with
    /// retries that never holds up a call).
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Also write each participant's audio, as scored (losses as silence), to
    /// DIR/<call-id>/<leg>.wav. Nothing is written without it.
    #[arg(long, value_name = "DIR")]
    record: Option<std::path::PathBuf>,
    #[command(flatten)]
    alerts: AlertArgs,
    #[command(flatten)]
    detector: DetectorArgs,
}

fn parse_cidr(s: &str) -> std::result::Result<Cidr, String> {
    s.trim().parse()
}

fn parse_range(s: &str) -> std::result::Result<(u16, u16), String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("'{s}' is not a port range LO-HI"))?;
    let port = |p: &str| p.trim().parse::<u16>().map_err(|_| format!("'{p}' is not a port"));
    let (lo, hi) = (port(lo)?, port(hi)?);
    if lo == 0 || hi <= lo {
        return Err(format!("'{s}': the range must hold at least two ports above 0"));
    }
    Ok((lo, hi))
}

pub fn run(args: SiprecArgs) -> Result<ExitCode> {
    if !(args.idle_seconds.is_finite() && args.idle_seconds > 0.0 && args.idle_seconds < 1e7) {
        bail!("--idle-seconds must be a positive number of seconds");
    }
    if !(args.drain_seconds.is_finite() && (0.0..1e7).contains(&args.drain_seconds)) {
        bail!("--drain-seconds must not be negative");
    }
    if args.max_calls == 0 {
        bail!("--max-calls must be at least 1");
    }
    let policy = args.alerts.policy()?;
    let (model, detector) = args.detector.build()?;
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = SiprecConfig {
        listen: args.listen,
        http: args.http,
        rtp_ports: args.rtp_ports,
        media_address: args.media_address,
        allow: args.allow,
        max_calls: args.max_calls,
        idle_timeout: Duration::from_secs_f64(args.idle_seconds),
        drain_timeout: Duration::from_secs_f64(args.drain_seconds),
        workers,
        max_buffered_samples: args.max_buffered_mb.saturating_mul(1 << 18),
        webhook: args.webhook,
        record: args.record,
        policy,
        tls: match (args.tls_listen, args.tls_cert, args.tls_key) {
            (Some(listen), Some(certificate), Some(key)) => Some(TlsConfig {
                listen,
                certificate,
                key,
            }),
            _ => None,
        },
    };
    let (lo, hi) = config.rtp_ports;
    siprec::run(config, model, detector, |bound| {
        let http = bound
            .http
            .map_or(String::new(), |a| format!(", health and metrics on http://{a}"));
        let tls = bound.tls.map_or(String::new(), |a| format!(", TLS on {a}"));
        eprintln!(
            "synthscan: recording SIPREC calls on sip:{} (UDP and TCP{tls}), RTP ports {lo}-{hi}{http} ({workers} scoring workers)",
            bound.sip
        );
    })?;
    Ok(ExitCode::SUCCESS)
}
