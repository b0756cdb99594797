//! User data header (TS 23.040 §9.2.3.24): UDHL, then information elements (IEI, IEDL, data).
//!
//! Only concatenation is acted on: IEI 0x00 (8-bit reference) and 0x08 (16-bit reference).
//! Other elements are skipped. A concatenation element whose total or sequence number is 0,
//! or whose sequence number exceeds the total, is ignored as §9.2.3.24.1 asks.

use super::{Concat, DecodeError};

pub(crate) const IEI_CONCAT_8: u8 = 0x00;
pub(crate) const IEI_CONCAT_16: u8 = 0x08;

/// Length in octets of a whole UDH (UDHL octet included) holding one concatenation element.
pub(crate) fn concat_udh_len(sixteen_bit: bool) -> usize {
    if sixteen_bit { 7 } else { 6 }
}

/// Writes a UDH holding one concatenation element.
pub(crate) fn write_concat(out: &mut Vec<u8>, c: Concat, sixteen_bit: bool) {
    if sixteen_bit {
        let [hi, lo] = c.reference.to_be_bytes();
        out.extend_from_slice(&[0x06, IEI_CONCAT_16, 0x04, hi, lo, c.total, c.seq]);
    } else {
        out.extend_from_slice(&[0x05, IEI_CONCAT_8, 0x03, c.reference as u8, c.total, c.seq]);
    }
}

/// Parses the UDH at the start of `ud` (which begins at PDU octet `base`). Returns the
/// concatenation element, if any, and the UDH length in octets including the UDHL octet.
pub(crate) fn parse(ud: &[u8], base: usize) -> Result<(Option<Concat>, usize), DecodeError> {
    let Some(&udhl) = ud.first() else {
        return Err(DecodeError::Truncated {
            offset: base,
            field: "UDHL",
            needed: 1,
        });
    };
    let end = 1 + usize::from(udhl);
    if end > ud.len() {
        return Err(DecodeError::Invalid {
            offset: base,
            field: "UDHL",
            reason: format!(
                "header of {udhl} octets does not fit the {} octets of user data",
                ud.len() - 1
            ),
        });
    }
    let mut concat = None;
    let mut i = 1;
    while i < end {
        if i + 2 > end {
            return Err(DecodeError::Invalid {
                offset: base + i,
                field: "UDH",
                reason: "information element header overruns the UDH".into(),
            });
        }
        let (iei, len) = (ud[i], usize::from(ud[i + 1]));
        let data_start = i + 2;
        let data_end = data_start + len;
        if data_end > end {
            return Err(DecodeError::Invalid {
                offset: base + i,
                field: "UDH",
                reason: format!("information element {iei:02X} of {len} octets overruns the UDH"),
            });
        }
        let d = &ud[data_start..data_end];
        let c = match (iei, d) {
            (IEI_CONCAT_8, &[r, total, seq]) => Some(Concat {
                reference: u16::from(r),
                total,
                seq,
            }),
            (IEI_CONCAT_16, &[hi, lo, total, seq]) => Some(Concat {
                reference: u16::from_be_bytes([hi, lo]),
                total,
                seq,
            }),
            (IEI_CONCAT_8 | IEI_CONCAT_16, _) => {
                return Err(DecodeError::Invalid {
                    offset: base + i + 1,
                    field: "UDH",
                    reason: format!("concatenation element {iei:02X} with length {len}"),
                });
            }
            _ => None,
        };
        if let Some(c) = c
            && c.total != 0
            && c.seq != 0
            && c.seq <= c.total
        {
            concat = Some(c);
        }
        i = data_end;
    }
    Ok((concat, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_and_sixteen_bit_references() {
        assert_eq!(
            parse(&[0x05, 0x00, 0x03, 0xA7, 0x03, 0x02, 0xFF], 20),
            Ok((
                Some(Concat {
                    reference: 0xA7,
                    total: 3,
                    seq: 2
                }),
                6
            ))
        );
        assert_eq!(
            parse(&[0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01], 0),
            Ok((
                Some(Concat {
                    reference: 0x1234,
                    total: 2,
                    seq: 1
                }),
                7
            ))
        );
    }

    #[test]
    fn other_elements_are_skipped() {
        // Application port addressing (0x05) followed by a concat element.
        let ud = [
            0x0B, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x00, 0x03, 0x01, 0x02, 0x02,
        ];
        assert_eq!(
            parse(&ud, 0),
            Ok((
                Some(Concat {
                    reference: 1,
                    total: 2,
                    seq: 2
                }),
                12
            ))
        );
    }

    #[test]
    fn nonsense_sequence_numbers_are_ignored() {
        assert_eq!(
            parse(&[0x05, 0x00, 0x03, 0x01, 0x02, 0x03], 0),
            Ok((None, 6))
        );
        assert_eq!(
            parse(&[0x05, 0x00, 0x03, 0x01, 0x00, 0x00], 0),
            Ok((None, 6))
        );
    }

    #[test]
    fn overruns_are_errors_with_offsets() {
        assert!(matches!(
            parse(&[0x09, 0x00, 0x03], 30),
            Err(DecodeError::Invalid { offset: 30, .. })
        ));
        assert!(matches!(
            parse(&[0x04, 0x00, 0x05, 1, 2], 30),
            Err(DecodeError::Invalid { offset: 31, .. })
        ));
        assert!(matches!(
            parse(&[0x01, 0x00], 30),
            Err(DecodeError::Invalid { offset: 31, .. })
        ));
        assert!(matches!(
            parse(&[], 30),
            Err(DecodeError::Truncated { offset: 30, .. })
        ));
    }
}
