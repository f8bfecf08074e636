//! [`Isa`]: the instruction-set families of the fast kernels, run-time detection, and the
//! `PC_ISA` environment variable that forces one for a whole process.

use super::kernels::Family;
use crate::Error;
use std::sync::OnceLock;

/// An instruction-set family of pc's fast kernels.
///
/// Every family computes every product the fast path uses; they differ in speed and, by
/// summation order only, in the last bits: each family's result is within
/// `2 gamma_k sum |a_i b_i|` of [`Isa::Portable`]'s, and within one family the result is
/// the same bit for bit whatever the thread count.
///
/// [`Isa::detected`] is the best family this processor runs (detected once per process).
/// The environment variable `PC_ISA` (`portable`, `avx2` or `avx512`) forces one for the
/// whole process: [`crate::fast::Fast::new`] returns it, or an [`Error::UnknownIsa`] /
/// [`Error::UnavailableIsa`] for a value that names no family or one this processor
/// lacks. [`crate::fast::Fast::with_isa`] chooses one for a single backend value.
///
/// # Example
/// ```
/// use pcnet_std::fast::Isa;
/// let best = Isa::detected();
/// assert!(Isa::available().contains(&best));
/// assert!(Isa::available().contains(&Isa::Portable));
/// assert_eq!("avx2".parse::<Isa>()?, Isa::Avx2);
/// assert_eq!(Isa::Avx512.to_string(), "avx512");
/// # Ok::<(), pcnet_std::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Plain loops, no SIMD: every processor.
    Portable,
    /// AVX2 + FMA, 256-bit vectors (x86-64).
    Avx2,
    /// AVX-512F (with VL/BW/DQ where they help), 512-bit vectors (x86-64).
    Avx512,
}

impl Isa {
    /// Every family, slowest first.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// The name `PC_ISA`, [`core::str::FromStr`] and [`core::fmt::Display`] use.
    ///
    /// # Example
    /// ```
    /// assert_eq!(pcnet_std::fast::Isa::Avx2.name(), "avx2");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The families this build has kernels for and this processor runs, slowest first
    /// (always starting with [`Isa::Portable`]); detected once per process.
    ///
    /// # Example
    /// ```
    /// use pcnet_std::fast::Isa;
    /// assert_eq!(Isa::available()[0], Isa::Portable);
    /// ```
    pub fn available() -> &'static [Isa] {
        static AVAILABLE: OnceLock<Vec<Isa>> = OnceLock::new();
        AVAILABLE.get_or_init(|| {
            Isa::ALL
                .into_iter()
                .filter(|&isa| Family::new(isa).is_some())
                .collect()
        })
    }

    /// Whether this processor runs this family (and this build has its kernels).
    ///
    /// # Example
    /// ```
    /// assert!(pcnet_std::fast::Isa::Portable.is_available());
    /// ```
    pub fn is_available(self) -> bool {
        Isa::available().contains(&self)
    }

    /// The best family this processor runs (the last of [`Isa::available`]), whatever
    /// `PC_ISA` says.
    ///
    /// # Example
    /// ```
    /// use pcnet_std::fast::Isa;
    /// assert!(Isa::detected() >= Isa::Portable);
    /// ```
    pub fn detected() -> Isa {
        Isa::available().last().copied().unwrap_or(Isa::Portable)
    }

    /// The family this process runs by default: `PC_ISA` when set (read once per process),
    /// else [`Isa::detected`].
    ///
    /// # Errors
    /// [`Error::UnknownIsa`] when `PC_ISA` names no family, [`Error::UnavailableIsa`] when
    /// it names one this processor or build cannot run (the same error on every call).
    ///
    /// # Example
    /// ```
    /// use pcnet_std::fast::Isa;
    /// if std::env::var_os("PC_ISA").is_none() {
    ///     assert_eq!(Isa::selected()?, Isa::detected());
    /// }
    /// # Ok::<(), pcnet_std::Error>(())
    /// ```
    pub fn selected() -> Result<Isa, Error> {
        static SELECTED: OnceLock<Result<Isa, (Option<Isa>, String)>> = OnceLock::new();
        let choice = SELECTED.get_or_init(|| match std::env::var("PC_ISA") {
            Err(std::env::VarError::NotPresent) => Ok(Isa::detected()),
            Err(std::env::VarError::NotUnicode(value)) => {
                Err((None, value.to_string_lossy().into_owned()))
            }
            Ok(value) => match value.trim().parse::<Isa>() {
                Ok(isa) if isa.is_available() => Ok(isa),
                Ok(isa) => Err((Some(isa), value)),
                Err(_) => Err((None, value)),
            },
        });
        match choice {
            Ok(isa) => Ok(*isa),
            Err((Some(isa), _)) => Err(Error::UnavailableIsa {
                isa: *isa,
                available: Isa::available(),
            }),
            Err((None, value)) => Err(Error::UnknownIsa {
                value: value.clone(),
            }),
        }
    }
}

impl core::fmt::Display for Isa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for Isa {
    type Err = Error;

    /// `portable`, `avx2` or `avx512` (ASCII case ignored).
    fn from_str(name: &str) -> Result<Isa, Error> {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::UnknownIsa {
                value: name.to_owned(),
            })
    }
}
