//! Live capture from an input device (cpal), for the microphone monitor.
//!
//! The device callback runs on the audio thread and must never block, allocate, print or
//! panic: it only converts the device's samples to `f32` and copies them into a lock-free
//! single-producer ring buffer. When the ring is full (the consumer fell behind) the whole
//! callback buffer is dropped and counted as an overrun, so frames stay aligned across
//! channels. Device errors are recorded for the consumer, which decides what to do.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};

use super::StreamInfo;
use crate::error::{Error, Result};

/// One input configuration range a device offers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigRange {
    pub channels: u16,
    pub min_rate_hz: u32,
    pub max_rate_hz: u32,
    pub sample_format: String,
}

/// An input device as listed by `synthscan devices`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceInfo {
    /// Human-readable name (what `--device` matches first).
    pub name: String,
    /// Host-specific stable identifier.
    pub id: String,
    pub is_default: bool,
    /// The device's default configuration, when it reports one.
    pub default_config: Option<ConfigRange>,
    pub configs: Vec<ConfigRange>,
}

fn device_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Device(format!("{what}: {e}"))
}

fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|desc| desc.name().to_string())
        .unwrap_or_else(|_| d.to_string())
}

fn device_id(d: &cpal::Device) -> String {
    d.id().map(|id| id.to_string()).unwrap_or_default()
}

/// Lists the input devices of the default host.
pub fn list_input_devices() -> Result<Vec<DeviceInfo>> {
    let host = cpal::default_host();
    let default_id = host.default_input_device().map(|d| device_id(&d));
    let devices = host
        .input_devices()
        .map_err(|e| device_err("cannot list input devices", e))?;
    let mut out = Vec::new();
    for d in devices {
        let id = device_id(&d);
        let configs = d
            .supported_input_configs()
            .map(|it| {
                it.map(|c| ConfigRange {
                    channels: c.channels(),
                    min_rate_hz: c.min_sample_rate(),
                    max_rate_hz: c.max_sample_rate(),
                    sample_format: c.sample_format().to_string(),
                })
                .collect()
            })
            .unwrap_or_default();
        let default_config = d.default_input_config().ok().map(|c| ConfigRange {
            channels: c.channels(),
            min_rate_hz: c.sample_rate(),
            max_rate_hz: c.sample_rate(),
            sample_format: c.sample_format().to_string(),
        });
        out.push(DeviceInfo {
            name: device_name(&d),
            is_default: default_id.as_deref() == Some(id.as_str()),
            id,
            default_config,
            configs,
        });
    }
    Ok(out)
}

/// What to ask the device for; `None` takes the device's default.
#[derive(Debug, Clone, Default)]
pub struct CaptureRequest {
    /// Device name or id: an exact match first, else a unique case-insensitive substring.
    pub device: Option<String>,
    pub sample_rate_hz: Option<u32>,
    pub channels: Option<u16>,
    /// cpal's sample format name (`i16`, `f32`, ...).
    pub sample_format: Option<String>,
    /// Ring buffer between the audio thread and the analysis, in seconds of audio.
    pub buffer_s: f64,
}

fn find_device(host: &cpal::Host, wanted: Option<&str>) -> Result<cpal::Device> {
    let Some(wanted) = wanted else {
        return host
            .default_input_device()
            .ok_or_else(|| Error::Device("no default input device (try `synthscan devices`)".into()));
    };
    let devices: Vec<cpal::Device> = host
        .input_devices()
        .map_err(|e| device_err("cannot list input devices", e))?
        .collect();
    if let Some(d) = devices
        .iter()
        .find(|d| device_name(d) == wanted || device_id(d) == wanted)
    {
        return Ok(d.clone());
    }
    let lower = wanted.to_lowercase();
    let matches: Vec<&cpal::Device> = devices
        .iter()
        .filter(|d| device_name(d).to_lowercase().contains(&lower) || device_id(d).to_lowercase().contains(&lower))
        .collect();
    match matches.as_slice() {
        [d] => Ok((*d).clone()),
        [] => Err(Error::Device(format!(
            "no input device matches '{wanted}' (see `synthscan devices`)"
        ))),
        many => Err(Error::Device(format!(
            "'{wanted}' matches {} input devices ({}); give the full name",
            many.len(),
            many.iter().map(|d| device_name(d)).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Picks the configuration: the device default when nothing is asked, else the first
/// supported range that satisfies every request, preferring the default's sample format.
fn choose_config(device: &cpal::Device, req: &CaptureRequest) -> Result<cpal::SupportedStreamConfig> {
    let default = device.default_input_config().ok();
    if req.sample_rate_hz.is_none()
        && req.channels.is_none()
        && req.sample_format.is_none()
        && let Some(d) = default
    {
        return Ok(d);
    }
    let ranges: Vec<cpal::SupportedStreamConfigRange> = device
        .supported_input_configs()
        .map_err(|e| device_err("cannot read the device's configurations", e))?
        .collect();
    let default_format = default.as_ref().map(|d| d.sample_format());
    let default_rate = default.as_ref().map(|d| d.sample_rate());
    let fits = |r: &cpal::SupportedStreamConfigRange| {
        req.channels.is_none_or(|c| r.channels() == c)
            && req
                .sample_format
                .as_deref()
                .is_none_or(|f| r.sample_format().to_string().eq_ignore_ascii_case(f))
            && req
                .sample_rate_hz
                .is_none_or(|hz| (r.min_sample_rate()..=r.max_sample_rate()).contains(&hz))
    };
    let mut candidates: Vec<&cpal::SupportedStreamConfigRange> = ranges.iter().filter(|r| fits(r)).collect();
    candidates.sort_by_key(|r| Some(r.sample_format()) != default_format);
    let Some(range) = candidates.first() else {
        return Err(Error::Device(format!(
            "the device offers no input configuration with{}{}{} (see `synthscan devices`)",
            req.sample_rate_hz.map(|r| format!(" rate {r} Hz")).unwrap_or_default(),
            req.channels.map(|c| format!(" {c} channels")).unwrap_or_default(),
            req.sample_format
                .as_ref()
                .map(|f| format!(" format {f}"))
                .unwrap_or_default(),
        )));
    };
    let rate = req.sample_rate_hz.unwrap_or_else(|| {
        let (lo, hi) = (range.min_sample_rate(), range.max_sample_rate());
        default_rate.map_or(hi.min(48_000).max(lo), |d| d.clamp(lo, hi))
    });
    Ok((*range).with_sample_rate(rate))
}

/// State shared between the audio thread and the consumer.
#[derive(Debug, Default)]
struct Shared {
    overrun_samples: AtomicU64,
    failed: AtomicBool,
    error: Mutex<Option<String>>,
}

/// An open, running input stream.
pub struct Capture {
    // Kept alive for as long as the capture runs; dropping it stops the device.
    _stream: cpal::Stream,
    consumer: rtrb::Consumer<f32>,
    shared: Arc<Shared>,
    info: StreamInfo,
    device_name: String,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("device", &self.device_name)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn build_stream<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    mut producer: rtrb::Producer<f32>,
    shared: Arc<Shared>,
) -> std::result::Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let data_shared = Arc::clone(&shared);
    device.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            // Realtime thread: no allocation, no locks, no printing.
            match producer.write_chunk_uninit(data.len()) {
                Ok(chunk) => {
                    chunk.fill_from_iter(data.iter().map(|&s| <f32 as FromSample<T>>::from_sample_(s)));
                }
                Err(_) => {
                    data_shared
                        .overrun_samples
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
        },
        move |err: cpal::Error| {
            // Xruns are reported by the device, not fatal; anything else ends the capture.
            if err.kind() == cpal::ErrorKind::Xrun {
                shared.overrun_samples.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if let Ok(mut slot) = shared.error.try_lock() {
                slot.get_or_insert_with(|| err.to_string());
            }
            shared.failed.store(true, Ordering::Release);
        },
        Some(Duration::from_secs(5)),
    )
}

impl Capture {
    /// Opens and starts the input device.
    pub fn open(req: &CaptureRequest) -> Result<Self> {
        let host = cpal::default_host();
        let device = find_device(&host, req.device.as_deref())?;
        let name = device_name(&device);
        let supported = choose_config(&device, req)?;
        let config = supported.config();
        let sample_rate_hz = config.sample_rate;
        let channels = usize::from(config.channels);
        super::check_stream_limits(sample_rate_hz, channels)?;
        let buffer_s = if req.buffer_s.is_finite() {
            req.buffer_s.clamp(0.5, 600.0)
        } else {
            10.0
        };
        let capacity = (buffer_s * f64::from(sample_rate_hz)) as usize * channels;
        let (producer, consumer) = rtrb::RingBuffer::new(capacity);
        let shared = Arc::new(Shared::default());
        let format = supported.sample_format();
        let s = Arc::clone(&shared);
        let built = match format {
            SampleFormat::I8 => build_stream::<i8>(&device, &config, producer, s),
            SampleFormat::I16 => build_stream::<i16>(&device, &config, producer, s),
            SampleFormat::I32 => build_stream::<i32>(&device, &config, producer, s),
            SampleFormat::U8 => build_stream::<u8>(&device, &config, producer, s),
            SampleFormat::U16 => build_stream::<u16>(&device, &config, producer, s),
            SampleFormat::U32 => build_stream::<u32>(&device, &config, producer, s),
            SampleFormat::F32 => build_stream::<f32>(&device, &config, producer, s),
            SampleFormat::F64 => build_stream::<f64>(&device, &config, producer, s),
            other => {
                return Err(Error::UnsupportedSampleFormat(other.to_string()));
            }
        };
        let stream = built.map_err(|e| device_err(&format!("cannot open '{name}'"), e))?;
        stream
            .play()
            .map_err(|e| device_err(&format!("cannot start '{name}'"), e))?;
        Ok(Self {
            _stream: stream,
            consumer,
            shared,
            info: StreamInfo {
                sample_rate_hz,
                channels,
                codec: format!("{format} live input"),
                total_frames: None,
            },
            device_name: name,
        })
    }

    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// Appends whole frames captured since the last call to `out` (interleaved); returns the
    /// number of frames appended.
    pub fn read(&mut self, out: &mut Vec<f32>) -> usize {
        let ch = self.info.channels.max(1);
        let n = self.consumer.slots() / ch * ch;
        if n == 0 {
            return 0;
        }
        if let Ok(chunk) = self.consumer.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            out.extend_from_slice(a);
            out.extend_from_slice(b);
            chunk.commit_all();
        }
        n / ch
    }

    /// Samples dropped because the analysis fell behind (plus device-reported xruns).
    pub fn overruns(&self) -> u64 {
        self.shared.overrun_samples.load(Ordering::Relaxed)
    }

    /// The device error that ended the capture, if one did (unplugged, busy, ...).
    pub fn failure(&self) -> Option<Error> {
        if !self.shared.failed.load(Ordering::Acquire) {
            return None;
        }
        let msg = self
            .shared
            .error
            .lock()
            .ok()
            .and_then(|m| m.clone())
            .unwrap_or_else(|| "the device stopped".into());
        Some(Error::Device(format!("'{}' failed: {msg}", self.device_name)))
    }
}
