//! G.711 mu-law and A-law expansion (ITU-T G.711), to `f32` in `[-1, 1]`, and mu-law
//! compression (for simulating a phone line in tests, benchmarks and training tools).

/// Expands one mu-law byte.
pub fn ulaw_to_f32(byte: u8) -> f32 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    let linear = if sign != 0 { -magnitude } else { magnitude };
    linear as f32 / 32768.0
}

/// Compresses one sample (clamped to `[-1, 1]`) to a mu-law byte, as a G.711 encoder does.
pub fn f32_to_ulaw(x: f32) -> u8 {
    const BIAS: i32 = 0x84;
    let s = (x.clamp(-1.0, 1.0) * 32767.0) as i32;
    let sign = if s < 0 { 0x80 } else { 0 };
    let magnitude = (s.abs() + BIAS).min(0x7FFF);
    let exponent = (31 - magnitude.leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Expands one A-law byte.
pub fn alaw_to_f32(byte: u8) -> f32 {
    let a = byte ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = i32::from(a & 0x0F);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    // In A-law the sign bit set means positive.
    let linear = if a & 0x80 != 0 { magnitude } else { -magnitude };
    linear as f32 / 32768.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn mu_law_compression_round_trips_within_one_step() {
        for i in -32768..32768i32 {
            let x = i as f32 / 32768.0;
            let y = super::ulaw_to_f32(super::f32_to_ulaw(x));
            // mu-law steps grow with the level: at most 1/16 of the magnitude, plus half the
            // 8-unit step of the lowest segment.
            assert!((x - y).abs() <= x.abs() / 16.0 + 5.0 / 32768.0, "{x} -> {y}");
        }
        assert_eq!(super::f32_to_ulaw(0.0), 0xFF);
    }

    use super::*;

    #[test]
    fn ulaw_known_values() {
        // 0xFF and 0x7F are the two zeros; 0x00 and 0x80 the extremes (+-32124).
        assert_eq!(ulaw_to_f32(0xFF), 0.0);
        assert_eq!(ulaw_to_f32(0x7F), 0.0);
        assert!((ulaw_to_f32(0x80) - 32124.0 / 32768.0).abs() < 1e-6);
        assert!((ulaw_to_f32(0x00) + 32124.0 / 32768.0).abs() < 1e-6);
    }

    #[test]
    fn alaw_known_values() {
        // 0xD5 is the smallest positive step (+8), 0x55 the smallest negative (-8);
        // 0xAA and 0x2A the extremes (+-32256).
        assert!((alaw_to_f32(0xD5) - 8.0 / 32768.0).abs() < 1e-7);
        assert!((alaw_to_f32(0x55) + 8.0 / 32768.0).abs() < 1e-7);
        assert!((alaw_to_f32(0xAA) - 32256.0 / 32768.0).abs() < 1e-6);
        assert!((alaw_to_f32(0x2A) + 32256.0 / 32768.0).abs() < 1e-6);
    }

    #[test]
    fn expansions_are_monotonic_in_magnitude_per_sign() {
        // Over each half of the code space the magnitude must change monotonically.
        let mags: Vec<f32> = (0x80u8..=0xFF).map(|b| ulaw_to_f32(b).abs()).collect();
        assert!(mags.windows(2).all(|w| w[0] >= w[1]));
    }
}
