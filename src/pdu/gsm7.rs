//! GSM 7-bit default alphabet and its extension table (TS 23.038 §6.2.1, §6.2.1.1), and the
//! packing of septets into octets (TS 23.038 §6.1.2.1.1).
//!
//! Invariants: `@` is septet 0x00; an extension character costs two septets (0x1B escape plus
//! its code); packing is LSB-first and may start a number of fill bits into the user data so
//! the text begins on a septet boundary after a user data header.

/// The escape to the extension table.
pub(crate) const ESC: u8 = 0x1B;

/// Septet → character. Index 0x1B is the escape; it decodes as a space when it cannot be
/// resolved (ESC ESC, as §6.2.1.1 asks of receivers that know no further table).
const DEFAULT: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', ' ', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// Extension table: (code after the escape, character).
const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// ASCII → septet: the code, `0x80 | code` for an extension character, `0xFF` if absent.
const ASCII: [u8; 128] = build_ascii();

const fn build_ascii() -> [u8; 128] {
    let mut t = [0xFFu8; 128];
    let mut i = 0;
    while i < 128 {
        let c = DEFAULT[i] as u32;
        if i != ESC as usize && c < 128 {
            t[c as usize] = i as u8;
        }
        i += 1;
    }
    let mut j = 0;
    while j < EXTENSION.len() {
        let (code, c) = EXTENSION[j];
        if (c as u32) < 128 {
            t[c as usize] = 0x80 | code;
        }
        j += 1;
    }
    t
}

/// A character in the GSM alphabet: its code and whether it needs the escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gsm {
    pub code: u8,
    pub escaped: bool,
}

impl Gsm {
    /// Septets this character costs.
    pub(crate) fn cost(self) -> usize {
        if self.escaped { 2 } else { 1 }
    }
}

/// Character → GSM code, or `None` when the character needs UCS2.
#[inline]
pub(crate) fn lookup(c: char) -> Option<Gsm> {
    let u = c as u32;
    if u < 128 {
        let v = ASCII[u as usize];
        return match v {
            0xFF => None,
            _ if v & 0x80 != 0 => Some(Gsm {
                code: v & 0x7F,
                escaped: true,
            }),
            _ => Some(Gsm {
                code: v,
                escaped: false,
            }),
        };
    }
    if c == '€' {
        return Some(Gsm {
            code: 0x65,
            escaped: true,
        });
    }
    // Non-ASCII default characters are few; a scan is cheap and only runs for them.
    DEFAULT
        .iter()
        .position(|&d| d == c)
        .filter(|&i| i != usize::from(ESC))
        .map(|i| Gsm {
            code: i as u8,
            escaped: false,
        })
}

/// Septets the text costs, or `None` if some character is not in the GSM alphabet.
pub(crate) fn septet_count(text: &str) -> Option<usize> {
    let mut n = 0;
    for c in text.chars() {
        n += lookup(c)?.cost();
    }
    Some(n)
}

/// Packs septets LSB-first into `out`, starting `fill` zero bits in (fill < 7).
pub(crate) struct Packer<'a> {
    out: &'a mut Vec<u8>,
    acc: u32,
    bits: u32,
}

impl<'a> Packer<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>, fill: u32) -> Self {
        Packer {
            out,
            acc: 0,
            bits: fill,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, septet: u8) {
        self.acc |= u32::from(septet & 0x7F) << self.bits;
        self.bits += 7;
        if self.bits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
    }

    /// Pushes a character's septets (escape first for extension characters).
    #[inline]
    pub(crate) fn push_char(&mut self, g: Gsm) {
        if g.escaped {
            self.push(ESC);
        }
        self.push(g.code);
    }

    /// Writes the last partial octet, if any.
    pub(crate) fn finish(self) {
        if self.bits > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

/// Packs a whole GSM-encodable text; characters outside the alphabet are skipped (callers
/// check with [`septet_count`] first).
pub(crate) fn pack_text(out: &mut Vec<u8>, fill: u32, text: &str) {
    let mut p = Packer::new(out, fill);
    for c in text.chars() {
        if let Some(g) = lookup(c) {
            p.push_char(g);
        }
    }
    p.finish();
}

/// Septet number `index` of packed user data (septet 0 starts at bit 0 of `ud`), or `None`
/// when the octets are not there.
#[inline]
pub(crate) fn septet_at(ud: &[u8], index: usize) -> Option<u8> {
    let bit = index * 7;
    let byte = bit / 8;
    let shift = bit % 8;
    let lo = u16::from(*ud.get(byte)?);
    let v = if shift > 1 {
        lo | u16::from(*ud.get(byte + 1)?) << 8
    } else {
        lo
    };
    Some(((v >> shift) & 0x7F) as u8)
}

/// Decodes septets `from..to` of packed user data into text. An escape followed by a code the
/// extension table lacks shows the default character (§6.2.1.1); a trailing lone escape is
/// dropped. Returns `None` if the octets run out (callers check lengths first).
pub(crate) fn unpack_text(ud: &[u8], from: usize, to: usize) -> Option<String> {
    let mut s = String::with_capacity(to.saturating_sub(from));
    let mut escaped = false;
    for i in from..to {
        let c = septet_at(ud, i)?;
        if escaped {
            escaped = false;
            let ext = EXTENSION
                .iter()
                .find(|(code, _)| *code == c)
                .map(|&(_, ch)| ch);
            s.push(ext.unwrap_or(DEFAULT[usize::from(c)]));
        } else if c == ESC {
            escaped = true;
        } else {
            s.push(DEFAULT[usize::from(c)]);
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(text: &str) -> Vec<u8> {
        let mut v = Vec::new();
        pack_text(&mut v, 0, text);
        v
    }

    #[test]
    fn at_sign_is_septet_zero_and_dollar_is_two() {
        assert_eq!(
            lookup('@'),
            Some(Gsm {
                code: 0,
                escaped: false
            })
        );
        assert_eq!(
            lookup('$'),
            Some(Gsm {
                code: 2,
                escaped: false
            })
        );
        assert_eq!(lookup('`'), None);
        assert_eq!(lookup('\t'), None);
        assert_eq!(lookup('电'), None);
    }

    #[test]
    fn extension_characters_cost_two_septets() {
        for c in ['{', '}', '[', ']', '~', '\\', '^', '|', '€', '\u{0C}'] {
            let g = lookup(c).unwrap_or_else(|| panic!("{c:?} missing"));
            assert!(g.escaped, "{c:?}");
        }
        assert_eq!(septet_count("a{b}€"), Some(8));
        assert_eq!(septet_count("a电"), None);
    }

    #[test]
    fn every_default_character_round_trips() {
        let all: String = DEFAULT
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 0x1B)
            .map(|(_, c)| *c)
            .collect();
        let n = septet_count(&all).unwrap_or(0);
        assert_eq!(n, 127);
        let packed = pack(&all);
        assert_eq!(unpack_text(&packed, 0, n).as_deref(), Some(all.as_str()));
    }

    #[test]
    fn packs_hellohello_like_the_published_example() {
        // dreamfabric.com SMS PDU example: "hellohello" → E8329BFD4697D9EC37
        assert_eq!(
            pack("hellohello"),
            [0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37]
        );
    }

    #[test]
    fn escape_without_extension_shows_default_character() {
        let mut v = Vec::new();
        let mut p = Packer::new(&mut v, 0);
        for s in [ESC, 0x41, ESC, ESC, 0x42, ESC] {
            p.push(s);
        }
        p.finish();
        assert_eq!(unpack_text(&v, 0, 6).as_deref(), Some("A B"));
    }

    #[test]
    fn septet_at_stops_at_the_end_of_data() {
        assert_eq!(septet_at(&[0xE8], 0), Some(0x68));
        assert_eq!(septet_at(&[0xE8], 1), None);
    }
}
