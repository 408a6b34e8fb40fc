//! A causal voice-activity gate, so silence, line noise and tones are not scored.
//!
//! A frame is speech when it is loud enough (`min_energy_db`), stands out from a running noise
//! floor by `noise_margin_db`, and is not a tone (`max_tonality`). The floor follows any drop
//! at once and rises slowly (5 dB/s), so pauses between words reset it while steady hiss or
//! hum becomes the floor. Causal, so a stream and a file give the same decisions.

use crate::model::VadConfig;

const FLOOR_RISE_DB_PER_S: f32 = 5.0;

#[derive(Debug, Clone)]
pub struct VoiceGate {
    cfg: VadConfig,
    rise_per_frame_db: f32,
    floor_db: Option<f32>,
}

impl VoiceGate {
    pub fn new(cfg: &VadConfig, hop_s: f64) -> Self {
        Self {
            cfg: cfg.clone(),
            rise_per_frame_db: FLOOR_RISE_DB_PER_S * hop_s as f32,
            floor_db: None,
        }
    }

    pub fn is_speech(&mut self, energy_db: f32, tonality: f32) -> bool {
        let floor = match self.floor_db {
            Some(f) if energy_db >= f => f + self.rise_per_frame_db,
            _ => energy_db,
        };
        self.floor_db = Some(floor);
        energy_db >= self.cfg.min_energy_db
            && energy_db - floor >= self.cfg.noise_margin_db
            && tonality <= self.cfg.max_tonality
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> VoiceGate {
        VoiceGate::new(
            &VadConfig {
                min_energy_db: -50.0,
                max_tonality: 0.85,
                noise_margin_db: 6.0,
            },
            0.01,
        )
    }

    #[test]
    fn steady_noise_is_not_speech_but_bursts_above_it_are() {
        let mut g = gate();
        let steady: Vec<bool> = (0..300).map(|_| g.is_speech(-40.0, 0.1)).collect();
        assert!(steady.iter().all(|s| !s));
        // A burst 20 dB above the floor is speech; a long burst stays speech for seconds.
        let burst: Vec<bool> = (0..200).map(|_| g.is_speech(-20.0, 0.2)).collect();
        assert!(burst.iter().all(|&s| s));
    }

    #[test]
    fn quiet_or_tonal_frames_are_not_speech() {
        let mut g = gate();
        g.is_speech(-90.0, 0.0);
        assert!(!g.is_speech(-55.0, 0.1), "below min_energy_db");
        let mut g = gate();
        g.is_speech(-90.0, 0.0);
        assert!(!g.is_speech(-10.0, 0.99), "a tone");
    }
}
