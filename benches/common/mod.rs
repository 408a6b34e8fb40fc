//! What the load benchmarks share: the call audio they send, reading the server's start line,
//! the CPU time and memory of the server under test, and quantiles of the latencies they
//! measure.

use synthscan::audio::resample::StreamResampler;

/// The three shipped samples, one after the other, as 8 kHz mu-law (a phone line's audio).
pub fn call_audio() -> Vec<u8> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut pcm = Vec::new();
    for name in ["synthetic_robocall.wav", "genuine_jfk.wav", "genuine_phone_prompt.wav"] {
        let r = hound::WavReader::open(root.join(name)).unwrap();
        pcm.extend(r.into_samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0));
    }
    let mut rs = StreamResampler::new(16_000, 8_000).unwrap();
    let mut out = Vec::new();
    rs.push(&pcm, &mut out).unwrap();
    rs.finish(&mut out).unwrap();
    out.iter().map(|&x| synthscan::audio::f32_to_ulaw(x)).collect()
}

/// The word after `prefix` in a server's start line (`sip:` or `http://`: its address).
pub fn word_after(line: &str, prefix: &str) -> String {
    line.split(prefix)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {prefix} address in the start line: {line}"))
        .to_string()
}

/// User plus system CPU seconds of process `pid` so far (Linux /proc).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Quantile `p` of sorted seconds, in milliseconds (NaN when there are none).
pub fn quantile_ms(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        f64::NAN
    } else {
        sorted[((sorted.len() - 1) as f64 * p).round() as usize] * 1e3
    }
}

/// Peak resident memory of process `pid` so far, in MB (Linux /proc, VmHWM).
pub fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")?
                .trim()
                .strip_suffix(" kB")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
