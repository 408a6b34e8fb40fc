//! G.722 decoding at 64 kbit/s (ITU-T G.722, sub-band ADPCM): each byte carries a 6-bit
//! lower-band and a 2-bit upper-band code, and decodes to two samples at 16 kHz. Wideband calls
//! (HD voice on SIP trunks and desk phones) use it, RTP payload type 9. Written from the
//! recommendation's block diagram; checked sample for sample against another decoder in the
//! tests (tests/fixtures/g722, made by scripts/make_fixtures.sh with ffmpeg).

/// Output sample rate.
pub const G722_RATE_HZ: u32 = 16_000;

const QMF_COEFFS: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/// Lower band: inverse quantiser of the 6-bit code (QM6), of its 4-bit truncation (QM4), the
/// log-scale adaptation (WL via RL42) and the scale table (ILB).
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576,
    -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040,
    -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
    4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0,
];
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025,
    3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Upper band: inverse quantiser of the 2-bit code and its log-scale adaptation.
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const RH2: [usize; 4] = [2, 1, 2, 1];
const WH: [i32; 3] = [0, -214, 798];

fn saturate(x: i32) -> i32 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// One sub-band's adaptive predictor (two poles, six zeros) and scale factor.
#[derive(Debug, Clone, Default)]
struct Band {
    s: i32,
    sp: i32,
    sz: i32,
    r: [i32; 3],
    a: [i32; 3],
    ap: [i32; 3],
    p: [i32; 3],
    d: [i32; 7],
    b: [i32; 7],
    bp: [i32; 7],
    nb: i32,
    det: i32,
}

impl Band {
    fn new(det: i32) -> Self {
        Self { det, ..Self::default() }
    }

    /// Updates the predictor with the quantised difference `d` (the recommendation's block 4).
    fn update(&mut self, d: i32) {
        self.d[0] = d;
        self.r[0] = saturate(self.s + d);
        self.p[0] = saturate(self.sz + d);
        // second pole coefficient
        let sg0 = self.p[0] >> 15;
        let sg1 = self.p[1] >> 15;
        let sg2 = self.p[2] >> 15;
        let wd1 = saturate(self.a[1] * 4);
        let wd2 = if sg0 == sg1 { -wd1 } else { wd1 }.min(32767);
        let mut wd3 = (wd2 >> 7) + if sg0 == sg2 { 128 } else { -128 };
        wd3 += (self.a[2] * 32512) >> 15;
        self.ap[2] = wd3.clamp(-12288, 12288);
        // first pole coefficient
        let wd1 = if sg0 == sg1 { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        let limit = saturate(15360 - self.ap[2]);
        self.ap[1] = saturate(wd1 + wd2).clamp(-limit, limit);
        // zero coefficients
        let step = if d == 0 { 0 } else { 128 };
        let sg_d = d >> 15;
        for i in 1..7 {
            let wd2 = if self.d[i] >> 15 == sg_d { step } else { -step };
            let wd3 = (self.b[i] * 32640) >> 15;
            self.bp[i] = saturate(wd2 + wd3);
        }
        // delays
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = self.bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
            self.a[i] = self.ap[i];
        }
        // pole and zero sections of the predictor, and the prediction
        let wd1 = (self.a[1] * saturate(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * saturate(self.r[2] + self.r[2])) >> 15;
        self.sp = saturate(wd1 + wd2);
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * saturate(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = saturate(sz);
        self.s = saturate(self.sp + self.sz);
    }

    /// Adapts the log scale factor and derives the new step size (`shift` 8 lower, 10 upper).
    fn scale(&mut self, w: i32, max_nb: i32, shift: i32) {
        self.nb = (((self.nb * 127) >> 7) + w).clamp(0, max_nb);
        let index = ((self.nb >> 6) & 31) as usize;
        let wd2 = shift - (self.nb >> 11);
        let wd3 = if wd2 < 0 { ILB[index] << -wd2 } else { ILB[index] >> wd2 };
        self.det = wd3 << 2;
    }
}

/// A G.722 decoder's state (one per stream: it adapts to what it has decoded).
#[derive(Debug, Clone)]
pub struct G722Decoder {
    low: Band,
    high: Band,
    x: [i32; 24],
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    pub fn new() -> Self {
        Self {
            low: Band::new(32),
            high: Band::new(8),
            x: [0; 24],
        }
    }

    /// Decodes `codes` (one byte each) to samples in [-1, 1), two per byte, appended to `out`.
    pub fn decode(&mut self, codes: &[u8], out: &mut Vec<f32>) {
        out.reserve(codes.len() * 2);
        for &code in codes {
            let (a, b) = self.decode_one(code);
            out.push(f32::from(a) / 32768.0);
            out.push(f32::from(b) / 32768.0);
        }
    }

    fn decode_one(&mut self, code: u8) -> (i16, i16) {
        let ilow = usize::from(code & 0x3f);
        let ihigh = usize::from(code >> 6);
        // lower band: the sample from the full 6-bit code, the adaptation from its top 4 bits
        let rlow = (self.low.s + ((self.low.det * QM6[ilow]) >> 15)).clamp(-16384, 16383);
        let ilow4 = ilow >> 2;
        let dlow = (self.low.det * QM4[ilow4]) >> 15;
        self.low.scale(WL[RL42[ilow4]], 18432, 8);
        self.low.update(dlow);
        // upper band
        let dhigh = (self.high.det * QM2[ihigh]) >> 15;
        let rhigh = (dhigh + self.high.s).clamp(-16384, 16383);
        self.high.scale(WH[RH2[ihigh]], 22528, 10);
        self.high.update(dhigh);
        // receive QMF: the two bands back to one signal at twice the rate
        self.x.copy_within(2.., 0);
        self.x[22] = rlow + rhigh;
        self.x[23] = rlow - rhigh;
        let (mut out1, mut out2) = (0i32, 0i32);
        for i in 0..12 {
            out2 += self.x[2 * i] * QMF_COEFFS[i];
            out1 += self.x[2 * i + 1] * QMF_COEFFS[11 - i];
        }
        (saturate(out1 >> 11) as i16, saturate(out2 >> 11) as i16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_another_decoder_sample_for_sample() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/g722");
        let codes = std::fs::read(dir.join("speech.g722")).expect("fixture");
        let reference: Vec<i16> = std::fs::read(dir.join("speech_ffmpeg.s16"))
            .expect("fixture")
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let mut out = Vec::new();
        G722Decoder::new().decode(&codes, &mut out);
        assert_eq!(out.len(), reference.len());
        let ours: Vec<i16> = out.iter().map(|s| (s * 32768.0) as i16).collect();
        let worst = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
            .max();
        let exact = ours.iter().zip(&reference).filter(|(a, b)| a == b).count();
        // the same algorithm: equal but for the last bit of rounding in the filter
        assert!(worst.is_some_and(|w| w <= 1), "largest difference {worst:?}");
        assert!(
            exact * 100 >= ours.len() * 99,
            "{exact} of {} samples equal",
            ours.len()
        );
    }
}
