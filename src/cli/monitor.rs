//! `synthscan monitor`: watch a live input (a sound card, or raw PCM on stdin) and say, while
//! the call goes on, whether the voice is synthetic.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use synthscan::detect::{AlertState, LiveEvent};
use synthscan::report::{self, FileReport, LiveSummary, LiveView, ModelInfo};
use synthscan::{AudioSource, LiveStream, OnnxScorer};

use super::output::{ColorArg, use_color};
use super::{AlertArgs, DetectorArgs, RawArgs, input, output};

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// `-` reads raw PCM from standard input (with --raw-format and --raw-rate); without it,
    /// the input device is captured.
    #[arg(value_name = "INPUT")]
    input: Option<String>,
    /// Input device: its name or id, or a unique part of it (default: the system default).
    #[arg(long, value_name = "NAME")]
    device: Option<String>,
    /// Capture rate to ask the device for (default: the device's).
    #[arg(long, value_name = "HZ")]
    rate: Option<u32>,
    /// Input channels to ask the device for; each is scored separately.
    #[arg(long, value_name = "N")]
    channels: Option<u16>,
    /// Device sample format to ask for (i16, i32, f32, ...; default: the device's).
    #[arg(long, value_name = "FORMAT")]
    sample_format: Option<String>,
    /// Seconds of audio buffered between the device and the analysis.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    buffer_seconds: f64,
    /// Output: a live terminal view, or one JSON event per line.
    #[arg(long, short, value_enum)]
    format: Option<LiveFormat>,
    #[command(flatten)]
    alerts: AlertArgs,
    /// Shell command run (with `sh -c`) each time an alert is raised; SYNTHSCAN_CHANNEL,
    /// SYNTHSCAN_SCORE, SYNTHSCAN_TIME_S and SYNTHSCAN_ALERT (the event as JSON) are set.
    #[arg(long, value_name = "CMD")]
    alert_cmd: Option<String>,
    /// Keep what was heard in a WAV file (32-bit float, the input's rate and channels).
    #[arg(long, value_name = "FILE.wav")]
    record: Option<PathBuf>,
    /// Stop after this many seconds of audio.
    #[arg(long, value_name = "S")]
    max_seconds: Option<f64>,
    /// Give up when the device delivers nothing for this many seconds.
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    stall_seconds: f64,
    /// Print compute-time statistics (per update, p50/p99) to stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Colour in the live view.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
    #[command(flatten)]
    detector: DetectorArgs,
    #[command(flatten)]
    raw: RawArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LiveFormat {
    /// Redrawn terminal lines, then the text report.
    Live,
    /// One JSON object per event, then a `summary` object.
    Jsonl,
}

/// Where live audio comes from.
enum Input {
    #[cfg(feature = "mic")]
    Device(synthscan::audio::capture::Capture),
    Stdin {
        rx: Receiver<synthscan::Result<Option<Vec<f32>>>>,
        rate_hz: u32,
        channels: usize,
    },
}

enum Poll {
    /// Frames were appended.
    Audio,
    Idle,
    Ended,
}

impl Input {
    fn rate_and_channels(&self) -> (u32, usize) {
        match self {
            #[cfg(feature = "mic")]
            Input::Device(c) => (c.info().sample_rate_hz, c.info().channels),
            Input::Stdin { rate_hz, channels, .. } => (*rate_hz, *channels),
        }
    }

    fn label(&self) -> String {
        match self {
            #[cfg(feature = "mic")]
            Input::Device(c) => format!("device:{}", c.device_name()),
            Input::Stdin { .. } => "-".into(),
        }
    }

    fn codec(&self) -> String {
        match self {
            #[cfg(feature = "mic")]
            Input::Device(c) => c.info().codec.clone(),
            Input::Stdin { .. } => "raw stdin".into(),
        }
    }

    fn overruns(&self) -> u64 {
        match self {
            #[cfg(feature = "mic")]
            Input::Device(c) => c.overruns(),
            Input::Stdin { .. } => 0,
        }
    }

    /// Appends what has arrived to `buf`, waiting up to `wait` for something.
    fn poll(&mut self, buf: &mut Vec<f32>, wait: Duration) -> synthscan::Result<Poll> {
        match self {
            #[cfg(feature = "mic")]
            Input::Device(c) => {
                if let Some(e) = c.failure() {
                    return Err(e);
                }
                if c.read(buf) > 0 {
                    return Ok(Poll::Audio);
                }
                std::thread::sleep(wait);
                Ok(if c.read(buf) > 0 { Poll::Audio } else { Poll::Idle })
            }
            Input::Stdin { rx, .. } => match rx.recv_timeout(wait) {
                Ok(Ok(Some(samples))) => {
                    buf.extend_from_slice(&samples);
                    Ok(Poll::Audio)
                }
                Ok(Ok(None)) | Err(RecvTimeoutError::Disconnected) => Ok(Poll::Ended),
                Ok(Err(e)) => Err(e),
                Err(RecvTimeoutError::Timeout) => Ok(Poll::Idle),
            },
        }
    }
}

fn open_input(args: &MonitorArgs) -> Result<Input> {
    match args.input.as_deref() {
        Some("-") => {
            let source = input::open_stdin(&args.raw)?;
            let info = source.info().clone();
            let (tx, rx) = mpsc::sync_channel(64);
            // Reading stdin blocks; a thread keeps the analysis loop free to notice Ctrl-C.
            std::thread::spawn(move || {
                let mut source = source;
                loop {
                    let item = source.next_chunk().map(|c| c.map(|c| c.samples));
                    let done = !matches!(item, Ok(Some(_)));
                    if tx.send(item).is_err() || done {
                        break;
                    }
                }
            });
            Ok(Input::Stdin {
                rx,
                rate_hz: info.sample_rate_hz,
                channels: info.channels,
            })
        }
        Some(other) => bail!("monitor reads a device or `-` (stdin), not '{other}'; use `synthscan analyze` for files"),
        None => open_device(args),
    }
}

#[cfg(feature = "mic")]
fn open_device(args: &MonitorArgs) -> Result<Input> {
    let req = synthscan::audio::capture::CaptureRequest {
        device: args.device.clone(),
        sample_rate_hz: args.rate,
        channels: args.channels,
        sample_format: args.sample_format.clone(),
        buffer_s: args.buffer_seconds,
    };
    Ok(Input::Device(synthscan::audio::capture::Capture::open(&req)?))
}

#[cfg(not(feature = "mic"))]
fn open_device(_: &MonitorArgs) -> Result<Input> {
    bail!(
        "this build has no sound-card support (built without the `mic` feature); use `monitor -` with raw PCM on stdin"
    )
}

/// Where events go: the terminal view or JSON lines.
enum Sink<'a> {
    View(LiveView<'a>),
    Jsonl(Box<dyn Write + 'a>),
}

/// Compute time spent per update, for `--stats` and BENCHMARKS.md.
#[derive(Default)]
struct Timing {
    per_update_s: Vec<f64>,
    pending_s: f64,
    total_s: f64,
}

impl Timing {
    fn add(&mut self, elapsed_s: f64, updates: usize) {
        self.total_s += elapsed_s;
        self.pending_s += elapsed_s;
        if updates > 0 {
            for _ in 0..updates {
                self.per_update_s.push(self.pending_s / updates as f64);
            }
            self.pending_s = 0.0;
        }
    }

    /// `--stats`: compute per update and in all, against the audio heard.
    fn print(&self, audio_s: f64) {
        eprintln!(
            "synthscan: stats: {} updates, compute per update p50 {:.3} ms p99 {:.3} ms max {:.3} ms; \
             {:.3} s compute for {:.1} s audio ({:.2} % of one core in real time)",
            self.per_update_s.len(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
            self.quantile_ms(1.0),
            self.total_s,
            audio_s,
            if audio_s > 0.0 {
                100.0 * self.total_s / audio_s
            } else {
                0.0
            }
        );
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        if self.per_update_s.is_empty() {
            return 0.0;
        }
        let mut v = self.per_update_s.clone();
        v.sort_by(f64::total_cmp);
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i] * 1e3
    }
}

pub fn run(args: MonitorArgs) -> Result<ExitCode> {
    let policy = args.alerts.policy()?;
    if args.max_seconds.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        bail!("--max-seconds must be a positive number");
    }
    let (model, detector) = args.detector.build()?;
    let mut scorer = OnnxScorer::new(&model, 1)?;
    let stop = stop_on_ctrl_c()?;
    let mut input = open_input(&args)?;
    let (rate_hz, channels) = input.rate_and_channels();
    let mut live = LiveStream::new(&detector, rate_hz, channels, policy)?;
    let mut recorder = open_recorder(args.record.as_deref(), rate_hz, channels)?;
    let color = use_color(args.color);
    let mut sink = match args.format.unwrap_or(if std::io::stdout().is_terminal() {
        LiveFormat::Live
    } else {
        LiveFormat::Jsonl
    }) {
        LiveFormat::Live => {
            eprintln!(
                "synthscan: listening to {} ({rate_hz} Hz, {channels} ch); Ctrl-C for the summary",
                input.label()
            );
            Sink::View(LiveView::new(
                Box::new(output::Stdout::new()),
                color,
                detector.threshold_for(rate_hz),
                channels,
            ))
        }
        LiveFormat::Jsonl => Sink::Jsonl(Box::new(std::io::BufWriter::new(output::Stdout::new()))),
    };
    let mut alert_cmd = AlertCommand {
        cmd: args.alert_cmd.clone(),
        children: Vec::new(),
    };

    let heard = listen(
        &args,
        &stop,
        &mut input,
        &mut live,
        &mut scorer,
        &mut recorder,
        &mut sink,
        &mut alert_cmd,
    )?;

    let mut events = Vec::new();
    let analysis = live.finish(&mut scorer, &mut events)?;
    handle_events(&events, &mut sink, input.overruns(), &mut alert_cmd)?;
    if let Some(w) = recorder {
        w.finalize().context("cannot finish the recording")?;
    }
    let report = FileReport::new(
        &input.label(),
        &input.codec(),
        &analysis,
        Vec::new(),
        ModelInfo::from(&model.manifest),
    );
    let alerts = live.alerts_raised();
    summarise(&mut sink, &report, alerts, input.overruns(), color)?;
    if args.stats {
        heard.timing.print(heard.frames as f64 / f64::from(rate_hz));
    }
    alert_cmd.wait_all();
    if let Some(e) = heard.failure {
        eprintln!("synthscan: error: {}", super::error_text(&e));
        return Ok(ExitCode::from(2));
    }
    Ok(if analysis.is_flagged() || alerts > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The first Ctrl-C asks for the summary; a second one ends the process at once.
fn stop_on_ctrl_c() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

type Recorder = hound::WavWriter<std::io::BufWriter<std::fs::File>>;

/// `--record`: what was heard, as 32-bit float WAV at the input's rate and channels.
fn open_recorder(path: Option<&std::path::Path>, rate_hz: u32, channels: usize) -> Result<Option<Recorder>> {
    let Some(path) = path else { return Ok(None) };
    let spec = hound::WavSpec {
        channels: channels as u16,
        sample_rate: rate_hz,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let writer = hound::WavWriter::create(path, spec).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Some(writer))
}

/// What the listening loop heard.
struct Heard {
    frames: u64,
    timing: Timing,
    /// A device that failed or stalled: the summary is still given, then exit status 2.
    failure: Option<synthscan::Error>,
}

/// Feeds the input to the live stream until Ctrl-C, the end of the input, --max-seconds, or a
/// device failure, passing every event on as it comes.
#[allow(clippy::too_many_arguments)]
fn listen(
    args: &MonitorArgs,
    stop: &AtomicBool,
    input: &mut Input,
    live: &mut LiveStream,
    scorer: &mut OnnxScorer,
    recorder: &mut Option<Recorder>,
    sink: &mut Sink<'_>,
    alert_cmd: &mut AlertCommand,
) -> Result<Heard> {
    let (rate_hz, channels) = input.rate_and_channels();
    let max_frames = args.max_seconds.map(|s| (s * f64::from(rate_hz)).round() as u64);
    let stall = Duration::from_secs_f64(args.stall_seconds.clamp(0.1, 3600.0));
    let mut heard = Heard {
        frames: 0,
        timing: Timing::default(),
        failure: None,
    };
    let mut buf: Vec<f32> = Vec::with_capacity(rate_hz as usize * channels);
    let mut events = Vec::new();
    let mut last_audio = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        buf.clear();
        match input.poll(&mut buf, Duration::from_millis(10)) {
            Ok(Poll::Audio) => last_audio = Instant::now(),
            Ok(Poll::Idle) => {
                if matches!(input, Input::Stdin { .. }) || last_audio.elapsed() < stall {
                    continue;
                }
                heard.failure = Some(synthscan::Error::Device(format!(
                    "{} delivered no audio for {:.1} s",
                    input.label(),
                    stall.as_secs_f64()
                )));
                break;
            }
            Ok(Poll::Ended) => break,
            Err(e) => {
                heard.failure = Some(e);
                break;
            }
        }
        let mut take = buf.len() / channels;
        if let Some(max) = max_frames {
            take = take.min((max - heard.frames) as usize);
        }
        let samples = &buf[..take * channels];
        if let Some(w) = recorder.as_mut() {
            for &s in samples {
                w.write_sample(s).context("cannot write the recording")?;
            }
        }
        events.clear();
        let t0 = Instant::now();
        live.push(samples, scorer, &mut events)?;
        let updates = events.iter().filter(|e| matches!(e, LiveEvent::Update(_))).count();
        heard.timing.add(t0.elapsed().as_secs_f64(), updates);
        heard.frames += take as u64;
        handle_events(&events, sink, input.overruns(), alert_cmd)?;
        alert_cmd.reap();
        if max_frames.is_some_and(|m| heard.frames >= m) {
            break;
        }
    }
    Ok(heard)
}

/// The final report: the `analyze` report and the alert count under the live view, or one
/// `summary` event.
fn summarise(sink: &mut Sink<'_>, report: &FileReport, alerts: usize, overruns: u64, color: bool) -> Result<()> {
    match sink {
        Sink::View(view) => {
            view.clear()?;
            let mut r = report::reporter(report::Format::Text, Box::new(output::Stdout::new()), color);
            r.begin()?;
            r.file(report)?;
            r.finish()?;
            println!("alerts raised: {alerts}, overruns: {overruns} samples");
        }
        Sink::Jsonl(out) => {
            report::write_summary(
                out.as_mut(),
                &LiveSummary {
                    event: "summary",
                    report,
                    origin: None,
                    alerts,
                    overruns: Some(overruns),
                },
            )?;
        }
    }
    Ok(())
}

/// `--alert-cmd`: run on each raised alert, without waiting; children are reaped as they end.
struct AlertCommand {
    cmd: Option<String>,
    children: Vec<Child>,
}

impl AlertCommand {
    fn run(&mut self, events: &[LiveEvent]) {
        let Some(cmd) = &self.cmd else { return };
        for e in events {
            if let LiveEvent::Alert(a) = e
                && a.state == AlertState::Raised
            {
                let json = serde_json::to_string(e).unwrap_or_default();
                match Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .env("SYNTHSCAN_CHANNEL", a.channel.to_string())
                    .env("SYNTHSCAN_SCORE", format!("{:.4}", a.score))
                    .env("SYNTHSCAN_TIME_S", format!("{:.3}", a.time_s))
                    .env("SYNTHSCAN_ALERT", json)
                    .stdin(std::process::Stdio::null())
                    .spawn()
                {
                    Ok(child) => self.children.push(child),
                    Err(e) => eprintln!("synthscan: warning: cannot run the alert command: {e}"),
                }
            }
        }
    }

    fn reap(&mut self) {
        self.children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
    }

    fn wait_all(self) {
        for mut c in self.children {
            let _ = c.wait();
        }
    }
}

fn handle_events(events: &[LiveEvent], sink: &mut Sink<'_>, overruns: u64, alert_cmd: &mut AlertCommand) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    match sink {
        Sink::Jsonl(out) => {
            for e in events {
                report::write_event(out.as_mut(), e)?;
            }
            out.flush().context("cannot write events")?;
        }
        Sink::View(view) => {
            for e in events {
                if let LiveEvent::Alert(a) = e {
                    view.alert(a)?;
                }
            }
            // The newest update of each channel.
            let mut latest = Vec::new();
            for e in events.iter().rev() {
                if let LiveEvent::Update(u) = e
                    && !latest
                        .iter()
                        .any(|l: &&synthscan::detect::Update| l.channel == u.channel)
                {
                    latest.push(u);
                }
            }
            latest.sort_by_key(|u| u.channel);
            if !latest.is_empty() {
                view.draw(&latest, overruns)?;
            }
        }
    }
    alert_cmd.run(events);
    Ok(())
}
