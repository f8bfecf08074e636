//! The error of parsing a name ([`Activation`](crate::Activation), [`Loss`](crate::Loss),
//! [`Algorithm`](crate::Algorithm) implement [`FromStr`](core::str::FromStr)), without
//! allocating: the name given is kept in a small inline buffer.

use core::fmt;

/// The longest prefix of the name given that a [`ParseNameError`] keeps, in bytes.
const KEPT_NAME_BYTES: usize = 32;

/// A name that is none of the kind's names: says what was given and lists the valid names.
///
/// ```
/// use pcnet_core::Activation;
/// let err = "swish".parse::<Activation>().unwrap_err();
/// assert_eq!(err.given(), "swish");
/// assert_eq!(
///     err.to_string(),
///     "`swish` is not an activation name; the names are identity, relu, leaky_relu, tanh, sigmoid, softplus"
/// );
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParseNameError {
    kind: &'static str,
    valid: &'static str,
    given: [u8; KEPT_NAME_BYTES],
    given_len: usize,
    truncated: bool,
}

impl ParseNameError {
    /// The error for `given`, which is not the name of any `kind` (`"activation"`, ...);
    /// `valid` lists the names, comma separated.
    pub(crate) fn new(kind: &'static str, valid: &'static str, given: &str) -> Self {
        let mut end = given.len().min(KEPT_NAME_BYTES);
        while !given.is_char_boundary(end) {
            end -= 1;
        }
        let mut kept = [0u8; KEPT_NAME_BYTES];
        kept[..end].copy_from_slice(&given.as_bytes()[..end]);
        ParseNameError {
            kind,
            valid,
            given: kept,
            given_len: end,
            truncated: end < given.len(),
        }
    }

    /// The name given (its first 32 bytes when it was longer).
    ///
    /// ```
    /// use pcnet_core::Loss;
    /// let err = "hinge".parse::<Loss>().unwrap_err();
    /// assert_eq!(err.given(), "hinge");
    /// assert_eq!(err.to_string(), "`hinge` is not a loss name; the names are mse, mse_sum, cross_entropy");
    /// ```
    pub fn given(&self) -> &str {
        // The kept bytes end on a character boundary of a `str`.
        core::str::from_utf8(&self.given[..self.given_len]).unwrap_or("")
    }

    /// What kind of name was expected: `"activation"`, `"loss"`, ...
    ///
    /// ```
    /// use pcnet_core::Activation;
    /// assert_eq!("swish".parse::<Activation>().unwrap_err().kind(), "activation");
    /// ```
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The valid names, comma separated (`"mse, mse_sum, cross_entropy"`).
    ///
    /// ```
    /// use pcnet_core::Loss;
    /// assert_eq!("hinge".parse::<Loss>().unwrap_err().valid_names(), "mse, mse_sum, cross_entropy");
    /// ```
    pub fn valid_names(&self) -> &'static str {
        self.valid
    }
}

impl fmt::Display for ParseNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ellipsis = if self.truncated { "..." } else { "" };
        let article = if self.kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        write!(
            f,
            "`{}{ellipsis}` is not {article} {} name; the names are {}",
            self.given(),
            self.kind,
            self.valid
        )
    }
}

impl fmt::Debug for ParseNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseNameError")
            .field("kind", &self.kind)
            .field("given", &self.given())
            .field("truncated", &self.truncated)
            .field("valid", &self.valid)
            .finish()
    }
}

impl core::error::Error for ParseNameError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let given = "é".repeat(20); // 40 bytes, 2 per character
        let err = ParseNameError::new("activation", "relu", &given);
        assert_eq!(err.given(), "é".repeat(16));
        assert!(err
            .to_string()
            .starts_with(&std::format!("`{}...`", "é".repeat(16))));
    }
}
