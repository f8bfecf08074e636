//! Decoding structured test cases from arbitrary bytes.
//!
//! Every read succeeds: past the end of the bytes a reader sees zeros, so every byte string,
//! including the empty one, decodes to some case, and a fuzzer's mutations of one byte
//! change one decision.

/// A cursor over fuzzer bytes that never fails.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Input { bytes, at: 0 }
    }

    /// The next byte, or 0 past the end.
    pub fn byte(&mut self) -> u8 {
        let value = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at = self.at.saturating_add(1);
        value
    }

    /// A value in `0..n` (`n` in `1..=256`), from one byte.
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    /// True with probability about `1 / n` (from one byte); `n >= 1`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A little-endian `u32` from four bytes.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A little-endian `u64` from eight bytes.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// A small signed length change: 0 most of the time, else `-3..=3`.
    pub fn delta(&mut self) -> isize {
        if self.one_in(8) {
            self.below(7) as isize - 3
        } else {
            0
        }
    }

    /// A "tame" value: a multiple of 1/64 in `[-2, 2)`, exact in `f32` and `f64`.
    pub fn tame(&mut self) -> f64 {
        f64::from(self.byte() as i8) / 64.0
    }

    /// A value from the classes that break numerical code: zeros of both signs, NaN,
    /// infinities, subnormals (of f64 and of f32), huge and tiny values, raw bit patterns
    /// of f64 and f32; otherwise (about half the time) a tame value.
    pub fn special(&mut self) -> f64 {
        match self.byte() {
            0 => 0.0,
            1 => -0.0,
            2 => f64::NAN,
            3 => f64::INFINITY,
            4 => f64::NEG_INFINITY,
            5 => f64::MIN_POSITIVE / 4.0, // f64 subnormal (0 in f32)
            6 => 1e-40,                   // f32 subnormal
            7 => 1e30,                    // finite in f32, huge
            8 => 1e300,                   // infinite in f32
            9 => -1e30,
            10 => f64::MAX,
            11 => f64::EPSILON,
            12 => f64::from_bits(self.u64()),
            13 => f64::from(f32::from_bits(self.u32())),
            14 => 1.0,
            15 => 2.0,
            16 => 1.999_999,
            17 => -1.0,
            18 => f64::from(f32::MAX),
            19 => -f64::MIN_POSITIVE,
            20..=127 => self.tame(),
            byte => f64::from(byte - 127) / 64.0,
        }
    }

    /// A step size: half the time in `(0, 2)` (the valid range), else a [`special`](Self::special) value.
    pub fn step_size(&mut self) -> f64 {
        if self.byte() < 128 {
            (f64::from(self.byte()) + 1.0) / 129.0
        } else {
            self.special()
        }
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.at..).unwrap_or(&[])
    }
}
