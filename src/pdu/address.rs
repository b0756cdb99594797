//! Addresses: the SMSC field (RP address as modems print it, TS 24.011 §8.2.5.1) and the TP
//! addresses TP-OA / TP-DA / TP-RA (TS 23.040 §9.1.2.5).
//!
//! Length rules differ and are the classic trap: the SMSC field's length counts octets
//! including the type-of-address octet (`00` = no SMSC); a TP address's length counts the
//! useful semi-octets (digits), and for an alphanumeric address the semi-octets of its packed
//! septets. Type of address: 0x91 international/ISDN, 0x81 unknown/ISDN, 0xD0 alphanumeric.

use super::gsm7;
use super::reader::Reader;
use super::{Address, DecodeError, EncodeError, NumberType};

pub(crate) const TOA_INTERNATIONAL: u8 = 0x91;
pub(crate) const TOA_UNKNOWN: u8 = 0x81;
pub(crate) const TOA_ALPHANUMERIC: u8 = 0xD0;

/// Longest TP address in digits (10 octets of semi-octets).
const MAX_DIGITS: usize = 20;
/// Longest alphanumeric address in septets (10 octets).
const MAX_ALPHA_SEPTETS: usize = 11;

fn number_type(toa: u8) -> NumberType {
    match (toa >> 4) & 0x07 {
        0 => NumberType::Unknown,
        1 => NumberType::International,
        2 => NumberType::National,
        5 => NumberType::Alphanumeric,
        other => NumberType::Other(other),
    }
}

fn digit_char(n: u8) -> char {
    match n {
        0..=9 => char::from(b'0' + n),
        0xA => '*',
        0xB => '#',
        0xC => 'a',
        0xD => 'b',
        _ => 'c',
    }
}

/// Swapped semi-octets → digits; `count` digits are read, an `F` filler is skipped.
fn decode_digits(octets: &[u8], count: usize) -> String {
    let mut s = String::with_capacity(count);
    for i in 0..count {
        let Some(&b) = octets.get(i / 2) else { break };
        let n = if i % 2 == 0 { b & 0x0F } else { b >> 4 };
        if n != 0xF {
            s.push(digit_char(n));
        }
    }
    s
}

/// A number as given by a caller: `+digits` (international) or `digits` (unknown type).
pub(crate) struct Number<'a> {
    pub toa: u8,
    pub digits: &'a str,
}

pub(crate) fn parse_number(raw: &str) -> Result<Number<'_>, EncodeError> {
    let (toa, digits) = match raw.strip_prefix('+') {
        Some(rest) => (TOA_INTERNATIONAL, rest),
        None => (TOA_UNKNOWN, raw),
    };
    if digits.is_empty() {
        return Err(EncodeError::InvalidNumber(raw.to_string(), "no digits"));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EncodeError::InvalidNumber(
            raw.to_string(),
            "only digits and a leading + are allowed",
        ));
    }
    if digits.len() > MAX_DIGITS {
        return Err(EncodeError::InvalidNumber(
            raw.to_string(),
            "more than 20 digits",
        ));
    }
    Ok(Number { toa, digits })
}

fn push_digits(out: &mut Vec<u8>, digits: &str) {
    for pair in digits.as_bytes().chunks(2) {
        let lo = pair[0] - b'0';
        let hi = pair.get(1).map_or(0xF, |d| d - b'0');
        out.push(hi << 4 | lo);
    }
}

/// Writes the SMSC field: `00` when absent, else octet length (TOA included), TOA, digits.
pub(crate) fn write_smsc(out: &mut Vec<u8>, smsc: Option<&str>) -> Result<(), EncodeError> {
    match smsc {
        None => out.push(0),
        Some(raw) => {
            let n = parse_number(raw)?;
            out.push(1 + n.digits.len().div_ceil(2) as u8);
            out.push(n.toa);
            push_digits(out, n.digits);
        }
    }
    Ok(())
}

/// Writes a TP address of digits: digit count, TOA, swapped semi-octets (odd count padded F).
pub(crate) fn write_tp_number(out: &mut Vec<u8>, raw: &str) -> Result<(), EncodeError> {
    let n = parse_number(raw)?;
    out.push(n.digits.len() as u8);
    out.push(n.toa);
    push_digits(out, n.digits);
    Ok(())
}

/// Writes a TP address that may be alphanumeric (a sender such as `95598` is digits, `GridCo`
/// is text): anything other than `digits` / `+digits` is packed as GSM 7-bit.
pub(crate) fn write_tp_sender(out: &mut Vec<u8>, raw: &str) -> Result<(), EncodeError> {
    let numeric = {
        let d = raw.strip_prefix('+').unwrap_or(raw);
        !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
    };
    if numeric {
        return write_tp_number(out, raw);
    }
    let septets = gsm7::septet_count(raw).ok_or_else(|| {
        EncodeError::InvalidNumber(
            raw.to_string(),
            "alphanumeric sender outside the GSM alphabet",
        )
    })?;
    if septets == 0 || septets > MAX_ALPHA_SEPTETS {
        return Err(EncodeError::InvalidNumber(
            raw.to_string(),
            "alphanumeric sender must be 1 to 11 septets",
        ));
    }
    out.push((septets * 7).div_ceil(4) as u8);
    out.push(TOA_ALPHANUMERIC);
    gsm7::pack_text(out, 0, raw);
    Ok(())
}

/// Reads the SMSC field; `None` when it is empty (`00`) or holds no digits.
pub(crate) fn read_smsc(r: &mut Reader<'_>) -> Result<Option<Address>, DecodeError> {
    let at = r.pos();
    let len = usize::from(r.u8("SMSC length")?);
    if len == 0 {
        return Ok(None);
    }
    if len > 12 {
        return Err(DecodeError::Invalid {
            offset: at,
            field: "SMSC length",
            reason: format!("{len} octets; at most 12 are possible"),
        });
    }
    let toa = r.u8("SMSC type of address")?;
    let octets = r.take(len - 1, "SMSC digits")?;
    let value = decode_digits(octets, octets.len() * 2);
    if value.is_empty() {
        return Ok(None);
    }
    Ok(Some(Address {
        number_type: number_type(toa),
        value,
    }))
}

/// Reads a TP address (TP-OA, TP-DA, TP-RA).
pub(crate) fn read_tp(r: &mut Reader<'_>, field: &'static str) -> Result<Address, DecodeError> {
    let at = r.pos();
    let len = usize::from(r.u8(field)?);
    if len > MAX_DIGITS {
        return Err(DecodeError::Invalid {
            offset: at,
            field,
            reason: format!("length {len} semi-octets; at most 20 are possible"),
        });
    }
    let toa = r.u8(field)?;
    let octets = r.take(len.div_ceil(2), field)?;
    let number_type = number_type(toa);
    let value = if number_type == NumberType::Alphanumeric {
        let septets = len * 4 / 7;
        gsm7::unpack_text(octets, 0, septets).unwrap_or_default()
    } else {
        decode_digits(octets, len)
    };
    Ok(Address { number_type, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_numbers_are_padded_with_f() {
        let mut v = Vec::new();
        write_tp_number(&mut v, "+8613800138000").unwrap();
        assert_eq!(v, [0x0D, 0x91, 0x68, 0x31, 0x08, 0x10, 0x83, 0x00, 0xF0]);
        v.clear();
        write_tp_number(&mut v, "95598").unwrap();
        assert_eq!(v, [0x05, 0x81, 0x59, 0x95, 0xF8]);
    }

    #[test]
    fn smsc_length_counts_octets_with_toa() {
        let mut v = Vec::new();
        write_smsc(&mut v, Some("+8613800100500")).unwrap();
        assert_eq!(v, [0x08, 0x91, 0x68, 0x31, 0x08, 0x10, 0x00, 0x05, 0xF0]);
        v.clear();
        write_smsc(&mut v, None).unwrap();
        assert_eq!(v, [0x00]);
    }

    #[test]
    fn bad_numbers_are_rejected() {
        for bad in ["", "+", "138-0013", "1".repeat(21).as_str(), "++86"] {
            assert!(parse_number(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn alphanumeric_sender_length_is_in_semi_octets() {
        let mut v = Vec::new();
        write_tp_sender(&mut v, "GridCo").unwrap();
        // 6 septets = 42 bits = 11 semi-octets, 6 octets.
        assert_eq!(v[0], 11);
        assert_eq!(v[1], 0xD0);
        assert_eq!(v.len(), 2 + 6);
        let mut r = Reader::new(&v);
        let a = read_tp(&mut r, "TP-OA").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a,
            Address {
                number_type: NumberType::Alphanumeric,
                value: "GridCo".into()
            }
        );
        assert!(write_tp_sender(&mut Vec::new(), "TwelveChars!").is_err());
        assert!(write_tp_sender(&mut Vec::new(), "国网").is_err());
    }

    #[test]
    fn address_longer_than_twenty_digits_is_invalid_at_its_offset() {
        let mut r = Reader::new(&[0x15, 0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(
            read_tp(&mut r, "TP-OA"),
            Err(DecodeError::Invalid { offset: 0, .. })
        ));
    }
}
