//! TP-SCTS / TP-DT (TS 23.040 §9.2.3.11): seven swapped semi-octet octets YY MM DD hh mm ss TZ.
//!
//! The time zone octet counts quarter hours; after swapping its nibbles, bit 3 of the octet
//! as transmitted (the tens digit's top bit) is the sign. Years 80–99 are read as 19xx, the
//! rest as 20xx; encoding accepts 2000–2079 only.

use super::reader::Reader;
use super::{DecodeError, EncodeError};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Timelike};

fn bcd(b: u8) -> Option<u32> {
    let (tens, units) = (b & 0x0F, b >> 4);
    (tens <= 9 && units <= 9).then_some(u32::from(tens) * 10 + u32::from(units))
}

fn swap(n: u32) -> u8 {
    (((n % 10) << 4) | ((n / 10) % 10)) as u8
}

pub(crate) fn read(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<DateTime<FixedOffset>, DecodeError> {
    let at = r.pos();
    let o = r.take(7, field)?;
    let invalid = |i: usize, reason: String| DecodeError::Invalid {
        offset: at + i,
        field,
        reason,
    };
    let mut v = [0u32; 6];
    for (i, slot) in v.iter_mut().enumerate() {
        *slot = bcd(o[i])
            .ok_or_else(|| invalid(i, format!("octet {:02X} is not two decimal digits", o[i])))?;
    }
    let tz = o[6];
    let (tens, units) = (tz & 0x07, tz >> 4);
    if units > 9 {
        return Err(invalid(
            6,
            format!("time zone octet {tz:02X} is not decimal"),
        ));
    }
    let quarters = i32::from(tens) * 10 + i32::from(units);
    let secs = if tz & 0x08 != 0 {
        -quarters * 900
    } else {
        quarters * 900
    };
    let offset =
        FixedOffset::east_opt(secs).ok_or_else(|| invalid(6, format!("time zone {secs} s")))?;
    let year = if v[0] >= 80 { 1900 + v[0] } else { 2000 + v[0] } as i32;
    let naive = NaiveDate::from_ymd_opt(year, v[1], v[2])
        .and_then(|d| d.and_hms_opt(v[3], v[4], v[5]))
        .ok_or_else(|| {
            invalid(
                0,
                format!(
                    "{year:04}-{:02}-{:02} {:02}:{:02}:{:02} is not a time",
                    v[1], v[2], v[3], v[4], v[5]
                ),
            )
        })?;
    offset
        .from_local_datetime(&naive)
        .single()
        .ok_or_else(|| invalid(0, "not a single local time".to_string()))
}

pub(crate) fn write(out: &mut Vec<u8>, t: &DateTime<FixedOffset>) -> Result<(), EncodeError> {
    let year = t.year();
    let secs = t.offset().local_minus_utc();
    // Quarter hours, truncated toward zero; offsets are whole quarters in practice.
    let quarters = secs.unsigned_abs() / 900;
    if !(2000..2080).contains(&year) || quarters > 79 {
        return Err(EncodeError::TimestampOutOfRange(t.to_rfc3339()));
    }
    out.push(swap(year as u32 % 100));
    out.push(swap(t.month()));
    out.push(swap(t.day()));
    out.push(swap(t.hour()));
    out.push(swap(t.minute()));
    // A leap second (60) does not fit the field's meaning; clamp it.
    out.push(swap(t.second().min(59)));
    let sign = if secs < 0 { 0x08 } else { 0 };
    out.push(swap(quarters) | sign);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(o: [u8; 7]) -> Result<DateTime<FixedOffset>, DecodeError> {
        read(&mut Reader::new(&o), "TP-SCTS")
    }

    #[test]
    fn plus_eight_hours_is_32_quarters() {
        let t = decode([0x62, 0x11, 0x82, 0x41, 0x30, 0x00, 0x23]).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-28T14:03:00+08:00");
        let mut out = Vec::new();
        write(&mut out, &t).unwrap();
        assert_eq!(out, [0x62, 0x11, 0x82, 0x41, 0x30, 0x00, 0x23]);
    }

    #[test]
    fn sign_bit_gives_negative_zone() {
        // -03:00 = 12 quarters → "12" swapped = 0x21, sign bit 0x08 → 0x29.
        let t = decode([0x52, 0x10, 0x10, 0x80, 0x00, 0x00, 0x29]).unwrap();
        assert_eq!(t.to_rfc3339(), "2025-01-01T08:00:00-03:00");
        let mut out = Vec::new();
        write(&mut out, &t).unwrap();
        assert_eq!(out[6], 0x29);
        // -05:30 (India's sign flipped; 22 quarters): 0x22 | 0x08.
        let t = decode([0x52, 0x10, 0x10, 0x80, 0x00, 0x00, 0x2A]).unwrap();
        assert_eq!(t.offset().local_minus_utc(), -(5 * 3600 + 30 * 60));
    }

    #[test]
    fn dreamfabric_example_1999() {
        let t = decode([0x99, 0x30, 0x92, 0x51, 0x61, 0x95, 0x80]).unwrap();
        assert_eq!(t.to_rfc3339(), "1999-03-29T15:16:59+02:00");
    }

    #[test]
    fn bad_digits_and_dates_are_invalid_at_their_octet() {
        assert!(matches!(
            decode([0x62, 0x1A, 0x82, 0x41, 0x30, 0x00, 0x23]),
            Err(DecodeError::Invalid { offset: 1, .. })
        ));
        // Month 13.
        assert!(matches!(
            decode([0x62, 0x31, 0x82, 0x41, 0x30, 0x00, 0x23]),
            Err(DecodeError::Invalid { .. })
        ));
        assert!(matches!(
            decode([0x62, 0x11, 0x82, 0x41, 0x30, 0x00, 0xA3]),
            Err(DecodeError::Invalid { offset: 6, .. })
        ));
    }

    #[test]
    fn years_outside_the_field_are_refused() {
        let t = FixedOffset::east_opt(0)
            .unwrap()
            .with_ymd_and_hms(2100, 1, 1, 0, 0, 0)
            .unwrap();
        assert!(write(&mut Vec::new(), &t).is_err());
    }
}
