//! Bounds-checked cursor over PDU octets and the hex helpers.
//!
//! Every read names the field it is reading so that a short input turns into a
//! [`DecodeError::Truncated`] that says what was missing and at which octet. Nothing here
//! allocates from a length read out of the PDU: `take` hands out a borrowed slice only when
//! the octets are really present.

use super::DecodeError;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Octet index of the next read (SMSC field included), for error reports.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(DecodeError::Truncated {
                offset: self.pos,
                field,
                needed: 1,
            }),
        }
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let rem = self.remaining();
        if n > rem {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                field,
                needed: n - rem,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Octets → hex text.
pub(crate) fn to_hex(bytes: &[u8], upper: bool) -> String {
    let digits = if upper { HEX_UPPER } else { HEX_LOWER };
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(digits[usize::from(b >> 4)] as char);
        s.push(digits[usize::from(b & 0x0F)] as char);
    }
    s
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Hex text (either case, surrounding whitespace ignored) → octets. `position` in the error
/// is the character index in the trimmed text.
pub(crate) fn from_hex(hex: &str) -> Result<Vec<u8>, DecodeError> {
    let t = hex.trim().as_bytes();
    if !t.len().is_multiple_of(2) {
        return Err(DecodeError::BadHex { position: t.len() });
    }
    let mut out = Vec::with_capacity(t.len() / 2);
    for (i, pair) in t.chunks_exact(2).enumerate() {
        let hi = nibble(pair[0]).ok_or(DecodeError::BadHex { position: 2 * i })?;
        let lo = nibble(pair[1]).ok_or(DecodeError::BadHex {
            position: 2 * i + 1,
        })?;
        out.push(hi << 4 | lo);
    }
    Ok(out)
}
