//! Chinese mobile numbers: normalisation to E.164, carrier by number segment, masking for logs.
//!
//! Marketing rows and operators write numbers every way people do: `138 0013 8000`,
//! `+86-138-0013-8000`, `0086 13800138000`, `(86)13800138000`, full-width `１３８…`. All of them
//! become one canonical form, [`E164`] (`+8613800138000`), before anything is stored, so the
//! idempotency checks, the failed-number counters and the status-report matching compare like
//! with like. Anything that is not a mainland mobile number (11 digits, `1[3-9]…`) is refused
//! with a [`PhoneError`] that says what is wrong, because the failed-number report exists to get
//! the marketing records corrected.
//!
//! The carrier table follows the MIIT number-segment allocation (as of 2025). Numbers keep
//! their segment when ported between carriers, so [`carrier_of`] is a preference hint for SIM
//! choice, never a routing guarantee.

use crate::message::Carrier;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A normalised mainland-China mobile number: always `+86` followed by 11 digits `1[3-9]…`.
///
/// The only ways to build one are [`normalise`] / [`str::parse`] / deserialisation, so holding
/// an `E164` is proof the number passed validation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

/// Why a string is not a Chinese mobile number. Messages are written for an operator fixing a
/// marketing record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("phone number contains the letter {0:?}")]
    Letters(char),
    #[error("phone number contains the character {0:?}, which is neither a digit nor a separator")]
    InvalidChar(char),
    #[error("'+' may only stand at the start of a phone number")]
    MisplacedPlus,
    #[error("country code +{0} is not mainland China (+86)")]
    NotChina(String),
    #[error("phone number has {0} digits, a mobile number has 11")]
    TooShort(usize),
    #[error("phone number has {0} digits, a mobile number has 11")]
    TooLong(usize),
    #[error("{0} does not start like a mobile number (13x to 19x)")]
    NotMobilePrefix(String),
}

/// Normalise a Chinese mobile number written with or without `+86` / `0086` / `86` / a trunk
/// `0`, with spaces, dashes, dots or parentheses, in ASCII or full-width digits.
pub fn normalise(input: &str) -> Result<E164, PhoneError> {
    let mut digits = String::with_capacity(16);
    let mut plus = false;
    let mut seen_any = false;
    for raw in input.chars() {
        let c = fold_full_width(raw);
        match c {
            '0'..='9' => {
                digits.push(c);
                seen_any = true;
            }
            '+' if !seen_any => {
                plus = true;
                seen_any = true;
            }
            '+' => return Err(PhoneError::MisplacedPlus),
            ' '
            | '\t'
            | '-'
            | '.'
            | '('
            | ')'
            | '/'
            | '\u{a0}'
            | '\u{3000}'
            | '\u{2010}'..='\u{2015}' => {}
            c if c.is_alphabetic() => return Err(PhoneError::Letters(c)),
            c => return Err(PhoneError::InvalidChar(c)),
        }
    }
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }
    let national: &str = if plus {
        match digits.strip_prefix("86") {
            Some(rest) => rest,
            None => return Err(PhoneError::NotChina(country_code_guess(&digits))),
        }
    } else if let Some(rest) = digits.strip_prefix("0086") {
        rest
    } else if digits.len() == 13 && digits.starts_with("86") {
        &digits[2..]
    } else if digits.len() == 12 && digits.starts_with('0') && digits[1..].starts_with('1') {
        // Trunk prefix, as dialled from a landline in another area.
        &digits[1..]
    } else {
        &digits
    };
    if national.len() < 11 {
        return Err(PhoneError::TooShort(national.len()));
    }
    if national.len() > 11 {
        return Err(PhoneError::TooLong(national.len()));
    }
    let b = national.as_bytes();
    if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
        return Err(PhoneError::NotMobilePrefix(national[..3].to_owned()));
    }
    Ok(E164(format!("+86{national}")))
}

/// Map full-width (U+FF01..) digits, plus, hyphen and parentheses to ASCII.
fn fold_full_width(c: char) -> char {
    match c {
        '\u{ff10}'..='\u{ff19}'
        | '\u{ff0b}'
        | '\u{ff0d}'
        | '\u{ff08}'
        | '\u{ff09}'
        | '\u{ff0e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
        c => c,
    }
}

/// The leading digits of a foreign number, for the error message only.
fn country_code_guess(digits: &str) -> String {
    // Calling codes are 1 to 3 digits; the common neighbours are 3 (852, 853, 886).
    let n = match digits.as_bytes().first() {
        Some(b'1') | Some(b'7') => 1,
        Some(b'8') | Some(b'2') | Some(b'3') | Some(b'9') if digits.len() > 2 => 3,
        _ => 2,
    };
    digits.chars().take(n).collect()
}

impl E164 {
    /// The canonical form, `+8613800138000`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 11 national digits, `13800138000`.
    pub fn national(&self) -> &str {
        &self.0[3..]
    }

    /// `138****8000`: enough to tell numbers apart in logs without revealing them.
    pub fn mask(&self) -> String {
        let n = self.national();
        format!("{}****{}", &n[..3], &n[7..])
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for E164 {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        normalise(s)
    }
}

impl AsRef<str> for E164 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for E164 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for E164 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        normalise(&s).map_err(serde::de::Error::custom)
    }
}

/// The carrier that was allocated the number's segment (virtual operators' segments map to
/// their host network). Unallocated or special segments give [`Carrier::Unknown`].
pub fn carrier_of(number: &E164) -> Carrier {
    let n = number.national().as_bytes();
    let three = u16::from(n[1] - b'0') * 10 + u16::from(n[2] - b'0') + 100;
    let fourth = n[3] - b'0';
    match (three, fourth) {
        // 1349 was China Satcom's satellite block, now run by China Telecom.
        (134, 9) => Carrier::ChinaTelecom,
        // 170 is split among MVNO hosts by its fourth digit.
        (170, 0..=2) => Carrier::ChinaTelecom,
        (170, 3 | 5 | 6) => Carrier::ChinaMobile,
        (170, 4 | 7..=9) => Carrier::ChinaUnicom,
        (134..=139 | 147 | 150..=152 | 157..=159 | 165 | 172 | 178, _) => Carrier::ChinaMobile,
        (182..=184 | 187 | 188 | 195 | 197 | 198, _) => Carrier::ChinaMobile,
        (130..=132 | 145 | 155 | 156 | 166 | 167 | 171 | 175 | 176, _) => Carrier::ChinaUnicom,
        (185 | 186 | 196, _) => Carrier::ChinaUnicom,
        (133 | 149 | 153 | 162 | 173 | 177 | 180 | 181 | 189, _) => Carrier::ChinaTelecom,
        (190 | 191 | 193 | 199, _) => Carrier::ChinaTelecom,
        (192, _) => Carrier::ChinaBroadnet,
        _ => Carrier::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_spellings() {
        let cases = [
            ("13800138000", "+8613800138000"),
            ("+8613800138000", "+8613800138000"),
            ("+86 138 0013 8000", "+8613800138000"),
            ("0086 138-0013-8000", "+8613800138000"),
            ("008613800138000", "+8613800138000"),
            ("8613800138000", "+8613800138000"),
            ("(86) 138-0013-8000", "+8613800138000"),
            ("+86 (138) 0013.8000", "+8613800138000"),
            ("  13800138000\t", "+8613800138000"),
            ("１３８００１３８０００", "+8613800138000"),
            ("＋８６ １３８－００１３－８０００", "+8613800138000"),
            ("138\u{3000}0013\u{3000}8000", "+8613800138000"),
            ("013800138000", "+8613800138000"),
            ("19212345678", "+8619212345678"),
            ("+86-199 1234 5678", "+8619912345678"),
        ];
        for (input, want) in cases {
            match normalise(input) {
                Ok(n) => assert_eq!(n.as_str(), want, "input {input:?}"),
                Err(e) => panic!("{input:?} rejected: {e}"),
            }
        }
    }

    #[test]
    fn rejected_spellings_say_why() {
        use PhoneError::*;
        let cases = [
            ("", Empty),
            ("   ", Empty),
            ("- ( )", Empty),
            ("1380013800", TooShort(10)),
            ("138001380001", TooLong(12)),
            ("+86 1380013800", TooShort(10)),
            ("0086138001380001", TooLong(12)),
            ("12800138000", NotMobilePrefix("128".into())),
            ("02012345678", NotMobilePrefix("020".into())),
            ("01012345678", NotMobilePrefix("010".into())),
            ("+852 6123 4567", NotChina("852".into())),
            ("+1 415 555 0100", NotChina("1".into())),
            ("138abc38000", Letters('a')),
            ("电话13800138000", Letters('电')),
            ("138#0013#8000", InvalidChar('#')),
            ("138+0013+8000", MisplacedPlus),
            ("++8613800138000", MisplacedPlus),
            ("8614012345678901", TooLong(16)),
        ];
        for (input, want) in cases {
            assert_eq!(normalise(input), Err(want), "input {input:?}");
        }
    }

    #[test]
    fn error_messages_are_readable() {
        let e = normalise("1380013800").unwrap_err();
        assert_eq!(
            e.to_string(),
            "phone number has 10 digits, a mobile number has 11"
        );
        let e = normalise("12800138000").unwrap_err();
        assert!(e.to_string().contains("128"), "{e}");
    }

    #[test]
    fn carriers_by_segment() {
        use Carrier::*;
        let cases = [
            ("13400000000", ChinaMobile),
            ("13490000000", ChinaTelecom),
            ("13500000000", ChinaMobile),
            ("13900000000", ChinaMobile),
            ("14700000000", ChinaMobile),
            ("15000000000", ChinaMobile),
            ("15700000000", ChinaMobile),
            ("17200000000", ChinaMobile),
            ("17800000000", ChinaMobile),
            ("18200000000", ChinaMobile),
            ("18800000000", ChinaMobile),
            ("19500000000", ChinaMobile),
            ("19700000000", ChinaMobile),
            ("19800000000", ChinaMobile),
            ("13000000000", ChinaUnicom),
            ("13200000000", ChinaUnicom),
            ("14500000000", ChinaUnicom),
            ("15500000000", ChinaUnicom),
            ("16600000000", ChinaUnicom),
            ("17500000000", ChinaUnicom),
            ("18600000000", ChinaUnicom),
            ("19600000000", ChinaUnicom),
            ("13300000000", ChinaTelecom),
            ("14900000000", ChinaTelecom),
            ("15300000000", ChinaTelecom),
            ("17300000000", ChinaTelecom),
            ("17700000000", ChinaTelecom),
            ("18000000000", ChinaTelecom),
            ("18900000000", ChinaTelecom),
            ("19000000000", ChinaTelecom),
            ("19300000000", ChinaTelecom),
            ("19900000000", ChinaTelecom),
            ("19200000000", ChinaBroadnet),
            // Virtual operators map to their host network.
            ("17000000000", ChinaTelecom),
            ("17020000000", ChinaTelecom),
            ("17030000000", ChinaMobile),
            ("17050000000", ChinaMobile),
            ("17060000000", ChinaMobile),
            ("17040000000", ChinaUnicom),
            ("17090000000", ChinaUnicom),
            ("17100000000", ChinaUnicom),
            ("16200000000", ChinaTelecom),
            ("16500000000", ChinaMobile),
            ("16700000000", ChinaUnicom),
            // Valid shape, no mobile carrier of record.
            ("15400000000", Unknown),
            ("14000000000", Unknown),
            ("16000000000", Unknown),
            ("17400000000", Unknown),
            ("19400000000", Unknown),
        ];
        for (input, want) in cases {
            let n = normalise(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(carrier_of(&n), want, "{input}");
        }
    }

    #[test]
    fn masking_hides_the_middle() {
        let n = normalise("+86 138 0013 8000").unwrap();
        assert_eq!(n.mask(), "138****8000");
        assert_eq!(n.national(), "13800138000");
        assert_eq!(n.to_string(), "+8613800138000");
    }

    #[test]
    fn serde_normalises() {
        let n: E164 = serde_json::from_str("\"138-0013-8000\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"+8613800138000\"");
        assert!(serde_json::from_str::<E164>("\"12345\"").is_err());
    }
}
