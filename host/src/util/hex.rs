//! Lowercase hex, the one way the host writes and reads hashes, keys and
//! signatures.

/// Why text is not the hex expected.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("expected {expected} hex digits, found {found} characters")]
    Length { expected: usize, found: usize },
    #[error("not hexadecimal")]
    NotHex,
}

/// `bytes` as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Exactly `N` bytes written as `2N` hex digits (either case).
///
/// # Errors
/// Another length, or a character that is not a hex digit.
pub fn decode<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return Err(HexError::Length {
            expected: N * 2,
            found: text.chars().count(),
        });
    }
    let nibble = |d: u8| match d {
        b'0'..=b'9' => Ok(d - b'0'),
        b'a'..=b'f' => Ok(d - b'a' + 10),
        b'A'..=b'F' => Ok(d - b'A' + 10),
        _ => Err(HexError::NotHex),
    };
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_hex() {
        let bytes = [0x00, 0x7f, 0xab, 0xff];
        assert_eq!(encode(&bytes), "007fabff");
        assert_eq!(decode::<4>("007FABFF"), Ok(bytes));
        assert_eq!(
            decode::<4>("007fab"),
            Err(HexError::Length {
                expected: 8,
                found: 6
            })
        );
        assert_eq!(decode::<1>("zz"), Err(HexError::NotHex));
        // Multi-byte characters are not digits (and never split a char).
        assert_eq!(decode::<1>("é"), Err(HexError::NotHex));
        assert!(decode::<2>("éé").is_err());
    }
}
