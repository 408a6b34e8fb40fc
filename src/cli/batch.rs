//! `synthscan batch`: thousands of recorded calls, in parallel, with results streamed as they
//! come and a resumable output file.
//!
//! Threads: one walker lists inputs into a bounded queue, N workers (one ONNX Runtime session
//! each) analyse them, and the main thread writes results and draws the progress bar. Memory is
//! bounded by the queue lengths, not by the number of files (except `--resume`, which keeps the
//! set of names already scored).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use globset::{Glob, GlobSet, GlobSetBuilder};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use synthscan::report::{self, ErrorReport, FileReport, ModelInfo};
use synthscan::{Detector, FileSource, LoadedModel, OnnxScorer, RecordingAnalysis, analyze_recording};

use super::output::FormatArg;
use super::{DetectorArgs, output};

/// File name patterns taken from directories when no --glob is given.
const DEFAULT_GLOBS: &[&str] = &[
    "*.wav", "*.wave", "*.flac", "*.ogg", "*.oga", "*.mp3", "*.WAV", "*.FLAC", "*.OGG", "*.MP3",
];

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Files and directories (searched recursively).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Read input paths, one per line, from FILE (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    from_list: Option<PathBuf>,
    /// File-name pattern for files found in directories (repeatable; default: common audio
    /// extensions). Matched against the path below the directory given, e.g. `2026-*/*.wav`.
    #[arg(long, value_name = "PATTERN")]
    glob: Vec<String>,
    /// Worker threads, each with its own ONNX Runtime session (default: all cores).
    #[arg(long, short, value_name = "N")]
    jobs: Option<usize>,
    /// Output format.
    #[arg(long, short, value_parser = FormatArg::parser(&["jsonl", "csv"]), default_value = "jsonl")]
    format: FormatArg,
    /// Write results to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE", conflicts_with = "resume")]
    output: Option<PathBuf>,
    /// Append results to OUT.jsonl, skipping every file it already holds a score for (a killed
    /// run loses nothing; files that failed are tried again). Records then name files by their
    /// absolute path, so a later run recognises them however it names them; the file is locked
    /// while a run writes to it.
    #[arg(long, value_name = "OUT.jsonl")]
    resume: Option<PathBuf>,
    /// Analyse files that hold less audio than their header says instead of refusing them.
    #[arg(long)]
    allow_truncated: bool,
    /// Progress bar on standard error: auto = when it is a terminal.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    progress: ProgressArg,
    #[command(flatten)]
    detector: DetectorArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProgressArg {
    Auto,
    Always,
    Never,
}

enum Outcome {
    Scored { report: FileReport, audio_s: f64 },
    Failed(ErrorReport),
}

pub fn run(args: BatchArgs) -> Result<ExitCode> {
    if args.paths.is_empty() && args.from_list.is_none() {
        bail!("nothing to analyse: give files or directories, or --from-list FILE");
    }
    if args.resume.is_some() && args.format != FormatArg::Jsonl {
        bail!("--resume works with --format jsonl only");
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 || jobs > 256 {
        bail!("--jobs must be in 1..=256");
    }
    let globs = build_globs(&args.glob)?;
    let (model, detector) = args.detector.build()?;
    let model = Arc::new(model);
    // Sessions are made up front so a broken runtime fails before any work is queued.
    let scorers = (0..jobs)
        .map(|_| OnnxScorer::new(&model, 1))
        .collect::<synthscan::Result<Vec<_>>>()?;
    // the lock is taken before the done set is read, so a second run cannot interleave
    let resume = args.resume.as_deref().map(Resume::open).transpose()?;
    let done = match &resume {
        Some(r) => r.already_scored()?,
        None => HashSet::new(),
    };
    let mut reporter = open_reporter(&args, resume)?;
    reporter.begin()?;
    let bar = progress_bar(args.progress);

    // Walker -> workers -> main, all through bounded queues.
    let (path_tx, path_rx) = mpsc::sync_channel::<PathBuf>(jobs * 4);
    let (result_tx, result_rx) = mpsc::sync_channel::<Outcome>(jobs * 4);
    let (count_tx, count_rx) = mpsc::channel::<u64>();
    let walker = {
        let paths = args.paths.clone();
        let list = args.from_list.clone();
        std::thread::spawn(move || walk(paths, list, &globs, &done, &path_tx, &count_tx))
    };
    let path_rx = Arc::new(Mutex::new(path_rx));
    let workers: Vec<_> = scorers
        .into_iter()
        .map(|mut scorer| {
            let rx = Arc::clone(&path_rx);
            let tx = result_tx.clone();
            let detector = detector.clone();
            let model = Arc::clone(&model);
            let options = WorkerOptions {
                allow_truncated: args.allow_truncated,
                absolute_names: args.resume.is_some(),
            };
            std::thread::spawn(move || worker(&detector, &model, &mut scorer, &rx, &tx, options))
        })
        .collect();
    drop(result_tx);

    let tally = collect(result_rx, &count_rx, reporter.as_mut(), &bar)?;
    reporter.finish()?;
    bar.finish_and_clear();
    for w in workers {
        if w.join().is_err() {
            bail!("a worker thread panicked");
        }
    }
    let (walk_errors, skipped) = walker
        .join()
        .map_err(|_| anyhow::anyhow!("the input walker panicked"))??;
    tally.print(skipped, jobs);
    Ok(if tally.errors > 0 || walk_errors > 0 {
        ExitCode::from(2)
    } else if tally.flagged > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The results' destination: appended to the --resume file, written to -o, or standard output.
fn open_reporter(args: &BatchArgs, resume: Option<Resume>) -> Result<Box<dyn report::Reporter>> {
    let out: Box<dyn Write> = match (resume, &args.output) {
        (Some(resume), _) => Box::new(std::io::BufWriter::new(resume.into_appender()?)),
        (None, Some(path)) => Box::new(std::io::BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        (None, None) => Box::new(output::Stdout::new()),
    };
    Ok(report::reporter(args.format.report_format(), out, false))
}

fn progress_bar(arg: ProgressArg) -> ProgressBar {
    let show = match arg {
        ProgressArg::Always => true,
        ProgressArg::Never => false,
        ProgressArg::Auto => std::io::stderr().is_terminal(),
    };
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} files  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Counts over the files a batch analysed.
struct Tally {
    files: u64,
    flagged: u64,
    errors: u64,
    audio_s: f64,
    started: Instant,
}

impl Tally {
    fn real_time_factor(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 { self.audio_s / secs } else { 0.0 }
    }

    /// The summary line on standard error (standard output carries nothing but results).
    fn print(&self, skipped: u64, jobs: usize) {
        eprintln!(
            "synthscan: batch: {} files analysed ({} flagged, {} errors{}), {:.1} min of audio in {:.1} s \
             ({:.0}x real time, {jobs} jobs)",
            self.files,
            self.flagged,
            self.errors,
            if skipped > 0 {
                format!(", {skipped} skipped as already scored")
            } else {
                String::new()
            },
            self.audio_s / 60.0,
            self.started.elapsed().as_secs_f64(),
            self.real_time_factor(),
        );
    }
}

/// Writes each result as it arrives (completion order) and keeps the progress bar current.
fn collect(
    results: Receiver<Outcome>,
    counts: &Receiver<u64>,
    reporter: &mut dyn report::Reporter,
    bar: &ProgressBar,
) -> Result<Tally> {
    let mut tally = Tally {
        files: 0,
        flagged: 0,
        errors: 0,
        audio_s: 0.0,
        started: Instant::now(),
    };
    for outcome in results {
        while let Ok(n) = counts.try_recv() {
            bar.inc_length(n);
        }
        tally.files += 1;
        match outcome {
            Outcome::Scored { report, audio_s } => {
                tally.audio_s += audio_s;
                if report.verdict == synthscan::Verdict::Synthetic {
                    tally.flagged += 1;
                }
                for w in &report.warnings {
                    bar.suspend(|| eprintln!("synthscan: {}: warning: {w}", report.file));
                }
                reporter.file(&report)?;
            }
            Outcome::Failed(e) => {
                tally.errors += 1;
                bar.suspend(|| eprintln!("synthscan: {}: {}", e.file, e.error));
                reporter.error(&e)?;
            }
        }
        bar.inc(1);
        bar.set_message(format!(
            "{} flagged, {} errors, {:.0}x real time",
            tally.flagged,
            tally.errors,
            tally.real_time_factor()
        ));
    }
    Ok(tally)
}

fn build_globs(patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    let defaults: Vec<String> = DEFAULT_GLOBS.iter().map(|s| format!("**/{s}")).collect();
    let list = if patterns.is_empty() { &defaults } else { patterns };
    for p in list {
        b.add(Glob::new(p).with_context(|| format!("invalid --glob pattern '{p}'"))?);
        // A bare `*.wav` should also match files in subdirectories.
        if !p.contains('/') {
            b.add(Glob::new(&format!("**/{p}")).with_context(|| format!("invalid --glob pattern '{p}'"))?);
        }
    }
    Ok(b.build()?)
}

/// Lists inputs into `tx`; returns the number of paths that could not be walked (each
/// already reported on stderr and as an error record would be noise for a whole directory)
/// and the number skipped as already scored.
fn walk(
    paths: Vec<PathBuf>,
    list: Option<PathBuf>,
    globs: &GlobSet,
    done: &HashSet<String>,
    tx: &SyncSender<PathBuf>,
    count: &mpsc::Sender<u64>,
) -> Result<(u64, u64)> {
    let mut errors = 0u64;
    let skipped = std::cell::Cell::new(0u64);
    let send = |path: PathBuf| -> bool {
        if !done.is_empty() && done.contains(&resume_key(&path)) {
            skipped.set(skipped.get() + 1);
            return true;
        }
        let _ = count.send(1);
        tx.send(path).is_ok()
    };
    let mut roots: Vec<PathBuf> = paths;
    if let Some(list) = list {
        for p in super::input::list_paths(&list)? {
            let p = p?;
            if p.is_dir() {
                roots.push(p);
            } else if !send(p) {
                return Ok((errors, skipped.get()));
            }
        }
    }
    for root in roots {
        if !root.is_dir() {
            // A file (or something missing: the worker reports it as an error record).
            if !send(root) {
                return Ok((errors, skipped.get()));
            }
            continue;
        }
        for entry in walkdir::WalkDir::new(&root).follow_links(true).sort_by_file_name() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    errors += 1;
                    eprintln!("synthscan: cannot walk {}: {e}", root.display());
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry.path().strip_prefix(&root).unwrap_or(entry.path());
            if !globs.is_match(rel) {
                continue;
            }
            if !send(entry.into_path()) {
                return Ok((errors, skipped.get()));
            }
        }
    }
    Ok((errors, skipped.get()))
}

#[derive(Debug, Clone, Copy)]
struct WorkerOptions {
    allow_truncated: bool,
    /// Name files by their absolute path (for --resume: a later run, from any directory,
    /// recognises them).
    absolute_names: bool,
}

fn worker(
    detector: &Detector,
    model: &LoadedModel,
    scorer: &mut OnnxScorer,
    rx: &Mutex<Receiver<PathBuf>>,
    tx: &SyncSender<Outcome>,
    options: WorkerOptions,
) {
    let info = ModelInfo::from(&model.manifest);
    loop {
        let next = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(path) = next else { return };
        let name = match std::path::absolute(&path) {
            Ok(absolute) if options.absolute_names => super::input::display_name(&absolute),
            _ => super::input::display_name(&path),
        };
        let analysed = FileSource::open(&path)
            .and_then(|mut source| analyze_recording(detector, &mut source, scorer, 1, options.allow_truncated));
        let outcome = match analysed {
            Ok(RecordingAnalysis {
                codec,
                analysis,
                warnings,
            }) => Outcome::Scored {
                audio_s: analysis.duration_s,
                report: FileReport::new(&name, &codec, &analysis, warnings, info.clone()),
            },
            Err(e) => Outcome::Failed(ErrorReport {
                file: name,
                error: super::error_text(&e),
            }),
        };
        if tx.send(outcome).is_err() {
            return;
        }
    }
}

/// How a file is recognised in the resume file, whichever way it was named: its canonical
/// path (symlinks and `..` resolved, relative names made absolute), as reports print it.
fn resume_key(path: &Path) -> String {
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| {
        // a file gone since (or a record's lossy name): the absolute path, `.` and `..` resolved
        // by their names
        let joined = std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path));
        let mut clean = PathBuf::new();
        for part in joined.components() {
            match part {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    clean.pop();
                }
                other => clean.push(other),
            }
        }
        clean
    });
    super::input::display_name(&absolute)
}

/// Records longer than this are not results (a corrupt or foreign file): skipped, never held.
const MAX_RECORD_BYTES: u64 = 1 << 20;

/// The --resume file, locked for this run.
struct Resume {
    file: File,
    path: PathBuf,
}

impl Resume {
    /// Opens (or creates) the file and takes an exclusive lock on it: two runs appending to one
    /// output would duplicate every record.
    fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // /dev/full, a FIFO or a terminal would be read forever or never hold the records
        if !file.metadata()?.is_file() {
            bail!("--resume needs a regular file; {} is not one", path.display());
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                bail!(
                    "{} is being written by another batch run (it holds a lock on it)",
                    path.display()
                )
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Keys of the files that already hold a score (error records are retried).
    fn already_scored(&self) -> Result<HashSet<String>> {
        let mut done = HashSet::new();
        let mut reader = BufReader::new(&self.file);
        reader.seek(SeekFrom::Start(0))?;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_RECORD_BYTES)
                .read_until(b'\n', &mut line)
                .with_context(|| format!("cannot read {}", self.path.display()))?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') && n as u64 == MAX_RECORD_BYTES {
                // skip the rest of an over-long line without holding it
                let mut sink = Vec::new();
                while (&mut reader).take(MAX_RECORD_BYTES).read_until(b'\n', &mut sink)? > 0
                    && sink.last() != Some(&b'\n')
                {
                    sink.clear();
                }
                continue;
            }
            // A run killed mid-line leaves a partial record: ignore it, the file is redone.
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) else {
                continue;
            };
            if v.get("error").is_none()
                && let Some(f) = v.get("file").and_then(|f| f.as_str())
            {
                done.insert(resume_key(Path::new(f)));
            }
        }
        Ok(done)
    }

    /// The file, ready to append to (a partial last line ended first); the lock goes with it.
    fn into_appender(mut self) -> Result<File> {
        let len = self.file.metadata()?.len();
        if len > 0 {
            self.file.seek(SeekFrom::Start(len - 1))?;
            let mut last = [0u8; 1];
            self.file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                self.file.write_all(b"\n")?;
            }
        }
        Ok(self.file)
    }
}
