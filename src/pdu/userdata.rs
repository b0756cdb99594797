//! TP-DCS (TS 23.038 §4), splitting text into segments, and TP-UDL / TP-UD in both
//! directions (TS 23.040 §9.2.3.16, §9.2.3.24).
//!
//! Invariants:
//! - GSM 7-bit is chosen when every character is in the default alphabet or its extension
//!   table, else UCS2 (UTF-16BE, surrogate pairs for characters beyond the BMP).
//! - One segment holds 160 septets / 70 UCS2 units; with an 8-bit concatenation header
//!   153 septets / 67 units, with a 16-bit one 152 / 66. Segments split between characters,
//!   so an escape sequence or a surrogate pair is never cut. At most 255 segments.
//! - For 7-bit data the UDL counts septets, header included; fill bits after the header make
//!   the text start on a septet boundary. For 8-bit and UCS2 the UDL counts octets.

use super::reader::Reader;
use super::{Body, Concat, DecodeError, EncodeError, Encoding, gsm7, udh};
use std::ops::Range;

/// Most segments a concatenated message can have (the 8-bit total field).
pub(crate) const MAX_SEGMENTS: usize = 255;
/// Octets of user data in one TPDU.
const MAX_UD_OCTETS: usize = 140;
const MAX_SEPTETS: usize = 160;

/// Alphabet and message class from a TP-DCS octet found at PDU offset `at`.
pub(crate) fn parse_dcs(dcs: u8, at: usize) -> Result<(Encoding, Option<u8>), DecodeError> {
    let unsupported = |reason: String| DecodeError::Unsupported {
        offset: at,
        field: "TP-DCS",
        reason,
    };
    match dcs >> 4 {
        // General data coding (00xx) and automatic-deletion (01xx) groups share the layout.
        0x0..=0x7 => {
            if dcs & 0x20 != 0 {
                return Err(unsupported(format!("{dcs:02X}: compressed text")));
            }
            let class = (dcs & 0x10 != 0).then_some(dcs & 0x03);
            let encoding = match (dcs >> 2) & 0x03 {
                0 => Encoding::Gsm7,
                1 => Encoding::EightBit,
                2 => Encoding::Ucs2,
                _ => return Err(unsupported(format!("{dcs:02X}: reserved alphabet"))),
            };
            Ok((encoding, class))
        }
        0x8..=0xB => Err(unsupported(format!("{dcs:02X}: reserved coding group"))),
        // Message waiting indication groups: discard / store (7-bit), store (UCS2).
        0xC | 0xD => Ok((Encoding::Gsm7, None)),
        0xE => Ok((Encoding::Ucs2, None)),
        _ => {
            let encoding = if dcs & 0x04 != 0 {
                Encoding::EightBit
            } else {
                Encoding::Gsm7
            };
            Ok((encoding, Some(dcs & 0x03)))
        }
    }
}

pub(crate) fn dcs_for(encoding: Encoding) -> u8 {
    match encoding {
        Encoding::Gsm7 => 0x00,
        Encoding::EightBit => 0x04,
        Encoding::Ucs2 => 0x08,
    }
}

/// Segment capacity in units (septets or UTF-16 units) given the UDH length in octets.
fn capacity(encoding: Encoding, udh_octets: usize) -> usize {
    match encoding {
        Encoding::Gsm7 => MAX_SEPTETS - (udh_octets * 8).div_ceil(7),
        _ => (MAX_UD_OCTETS - udh_octets) / 2,
    }
}

/// How a text is cut into segments.
pub(crate) struct Plan {
    pub encoding: Encoding,
    /// Units of the whole text.
    pub units: usize,
    /// Byte ranges of the text, one per segment (filled only when asked for).
    pub ranges: Vec<Range<usize>>,
    pub segments: usize,
    pub units_left: usize,
}

/// Cuts `text` into segments. `concat_udh` is the UDH length a concatenated segment carries.
pub(crate) fn plan(text: &str, concat_udh: usize, want_ranges: bool) -> Result<Plan, EncodeError> {
    let encoding = if gsm7::septet_count(text).is_some() {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    };
    let cost = |c: char| match encoding {
        Encoding::Gsm7 => gsm7::lookup(c).map_or(1, gsm7::Gsm::cost),
        _ => c.len_utf16(),
    };
    let single = capacity(encoding, 0);
    let cap = capacity(encoding, concat_udh);
    // One pass: total units, and the cut points as if the text needed several segments.
    let mut ranges = Vec::new();
    let (mut start, mut used, mut segments, mut units) = (0, 0, 1, 0);
    for (i, c) in text.char_indices() {
        let n = cost(c);
        units += n;
        if used + n > cap {
            if want_ranges && segments < MAX_SEGMENTS {
                ranges.push(start..i);
            }
            start = i;
            used = 0;
            segments += 1;
        }
        used += n;
    }
    if units <= single {
        ranges.clear();
        if want_ranges {
            ranges.push(0..text.len());
        }
        return Ok(Plan {
            encoding,
            units,
            ranges,
            segments: 1,
            units_left: single - units,
        });
    }
    if segments > MAX_SEGMENTS {
        return Err(EncodeError::TooLong { segments });
    }
    if want_ranges {
        ranges.push(start..text.len());
    }
    Ok(Plan {
        encoding,
        units,
        ranges,
        segments,
        units_left: cap - used,
    })
}

/// Writes TP-UDL and TP-UD for one segment of text, with an optional UDH.
pub(crate) fn write(
    out: &mut Vec<u8>,
    encoding: Encoding,
    text: &str,
    header: Option<(Concat, bool)>,
) {
    let udl_at = out.len();
    out.push(0);
    let ud_start = out.len();
    if let Some((c, sixteen)) = header {
        udh::write_concat(out, c, sixteen);
    }
    let udh_octets = out.len() - ud_start;
    match encoding {
        Encoding::Gsm7 => {
            let header_septets = (udh_octets * 8).div_ceil(7);
            let fill = (header_septets * 7 - udh_octets * 8) as u32;
            let mut p = gsm7::Packer::new(out, fill);
            let mut septets = header_septets;
            for c in text.chars() {
                if let Some(g) = gsm7::lookup(c) {
                    p.push_char(g);
                    septets += g.cost();
                }
            }
            p.finish();
            out[udl_at] = septets as u8;
        }
        _ => {
            out.reserve(text.len());
            for u in text.encode_utf16() {
                let [hi, lo] = u.to_be_bytes();
                out.push(hi);
                out.push(lo);
            }
            out[udl_at] = (out.len() - ud_start) as u8;
        }
    }
}

/// Reads TP-UDL and TP-UD.
pub(crate) fn read(
    r: &mut Reader<'_>,
    encoding: Encoding,
    udhi: bool,
) -> Result<(Option<Concat>, Body), DecodeError> {
    let udl_at = r.pos();
    let udl = usize::from(r.u8("TP-UDL")?);
    let (octets, limit) = match encoding {
        Encoding::Gsm7 => ((udl * 7).div_ceil(8), MAX_SEPTETS),
        _ => (udl, MAX_UD_OCTETS),
    };
    if udl > limit {
        return Err(DecodeError::Invalid {
            offset: udl_at,
            field: "TP-UDL",
            reason: format!("{udl} exceeds the maximum of {limit}"),
        });
    }
    let ud_at = r.pos();
    // Octets after the user data are ignored: some modems pad what they print.
    let ud = r.take(octets, "TP-UD")?;
    let (concat, udh_octets) = if udhi {
        udh::parse(ud, ud_at)?
    } else {
        (None, 0)
    };
    let body = match encoding {
        Encoding::Gsm7 => {
            let header_septets = (udh_octets * 8).div_ceil(7);
            if header_septets > udl {
                return Err(DecodeError::Invalid {
                    offset: udl_at,
                    field: "TP-UDL",
                    reason: format!("{udl} septets cannot hold a {udh_octets}-octet header"),
                });
            }
            let text =
                gsm7::unpack_text(ud, header_septets, udl).ok_or(DecodeError::Truncated {
                    offset: ud_at,
                    field: "TP-UD",
                    needed: 1,
                })?;
            Body::Text(text)
        }
        Encoding::EightBit => Body::Binary(ud[udh_octets..].to_vec()),
        Encoding::Ucs2 => {
            let data = &ud[udh_octets..];
            if !data.len().is_multiple_of(2) {
                return Err(DecodeError::Invalid {
                    offset: ud_at + udh_octets,
                    field: "TP-UD",
                    reason: format!("UCS2 text of {} octets is not whole code units", data.len()),
                });
            }
            let units = data
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]));
            let mut s = String::with_capacity(data.len() * 3 / 2);
            s.extend(char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)));
            Body::Text(s)
        }
    };
    Ok((concat, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcs_groups() {
        assert_eq!(parse_dcs(0x00, 0), Ok((Encoding::Gsm7, None)));
        assert_eq!(parse_dcs(0x04, 0), Ok((Encoding::EightBit, None)));
        assert_eq!(parse_dcs(0x08, 0), Ok((Encoding::Ucs2, None)));
        assert_eq!(parse_dcs(0x18, 0), Ok((Encoding::Ucs2, Some(0))));
        assert_eq!(parse_dcs(0x11, 0), Ok((Encoding::Gsm7, Some(1))));
        assert_eq!(parse_dcs(0xF0, 0), Ok((Encoding::Gsm7, Some(0))));
        assert_eq!(parse_dcs(0xF6, 0), Ok((Encoding::EightBit, Some(2))));
        assert_eq!(parse_dcs(0x48, 0), Ok((Encoding::Ucs2, None)));
        assert_eq!(parse_dcs(0xE0, 0), Ok((Encoding::Ucs2, None)));
        assert!(matches!(
            parse_dcs(0x20, 7),
            Err(DecodeError::Unsupported { offset: 7, .. })
        ));
        assert!(matches!(
            parse_dcs(0x0C, 7),
            Err(DecodeError::Unsupported { .. })
        ));
        assert!(matches!(
            parse_dcs(0x84, 7),
            Err(DecodeError::Unsupported { .. })
        ));
    }

    #[test]
    fn capacities() {
        assert_eq!(capacity(Encoding::Gsm7, 0), 160);
        assert_eq!(capacity(Encoding::Gsm7, 6), 153);
        assert_eq!(capacity(Encoding::Gsm7, 7), 152);
        assert_eq!(capacity(Encoding::Ucs2, 0), 70);
        assert_eq!(capacity(Encoding::Ucs2, 6), 67);
        assert_eq!(capacity(Encoding::Ucs2, 7), 66);
    }

    #[test]
    fn escape_is_not_split_across_segments() {
        // 152 plain septets then '€' (2 septets): the euro must move to segment 2 whole.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let p = plan(&text, 6, true).unwrap();
        assert_eq!(p.segments, 2);
        assert_eq!(&text[p.ranges[0].clone()], "a".repeat(152));
        assert!(text[p.ranges[1].clone()].starts_with('€'));
        assert_eq!(p.units_left, 153 - 12);
    }

    #[test]
    fn fill_bit_after_six_octet_header() {
        let mut out = Vec::new();
        write(
            &mut out,
            Encoding::Gsm7,
            "A",
            Some((
                Concat {
                    reference: 1,
                    total: 2,
                    seq: 1,
                },
                false,
            )),
        );
        // UDL = 7 header septets + 1; 'A' (0x41) shifted by one fill bit = 0x82.
        assert_eq!(out, [8, 0x05, 0x00, 0x03, 0x01, 0x02, 0x01, 0x82]);
        let mut r = Reader::new(&out);
        assert_eq!(
            read(&mut r, Encoding::Gsm7, true),
            Ok((
                Some(Concat {
                    reference: 1,
                    total: 2,
                    seq: 1
                }),
                Body::Text("A".into())
            ))
        );
    }

    #[test]
    fn udl_beyond_limit_or_data_is_an_error() {
        assert!(matches!(
            read(&mut Reader::new(&[161]), Encoding::Gsm7, false),
            Err(DecodeError::Invalid { .. })
        ));
        assert!(matches!(
            read(&mut Reader::new(&[10, 0x41]), Encoding::Gsm7, false),
            Err(DecodeError::Truncated {
                offset: 1,
                needed: 8,
                ..
            })
        ));
        assert!(matches!(
            read(&mut Reader::new(&[3, 0, 0x41, 0]), Encoding::Ucs2, false),
            Err(DecodeError::Invalid { .. })
        ));
    }
}
