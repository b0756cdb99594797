//! Hostile input through `pdu::decode` in the normal suite (the fuzz target does the same at
//! length): seeded random octets, every truncation and every single-octet corruption of the
//! published vectors. Each must give a value or an error whose offset lies inside the input.

use gridsms::pdu::{self, DecodeError};
use rand::{Rng, SeedableRng, rngs::StdRng};

const VECTORS: &[&str] = &[
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07",
    "07914306073011F0040B914316709807F2000880604290224080084E2D5174901A8BAF",
    "07919333852804000412D0F7FBDD454FB75D693A0000903002801153402BCD301E9F0605D9E971191483C140412A35690D52832063D2F9040599A058EE05A3BD6430580E",
    "07919471227210244405852122F039F1015062712181804F050003190202E4E8309B5E7683DAFC319A5E76B340F73D9A5D7683A6E93268FD9ED3CB6EF67B0E5AD172B19B2C2693C9602E90355D6683A6F0B007946E8382F5393BEC26BB00",
    "07914306073011F006270B913426565711F7012081111345400120811174054043",
    "005100098156355476F80000AA14050003880303C2A066D8CD02B5F3A0F9DB0D",
    "07914400000000F001000B811000000000F000040B48692074686572652E2E2E",
    "0011000B916407281553F80000AA0AE8329BFD4697D9EC37",
];

fn check(input: &[u8]) {
    match pdu::decode(input) {
        Ok(_) => {}
        Err(DecodeError::Truncated { offset, needed, .. }) => {
            assert!(
                offset <= input.len(),
                "offset {offset} past {} octets",
                input.len()
            );
            assert!(needed > 0);
        }
        Err(DecodeError::Invalid { offset, .. } | DecodeError::Unsupported { offset, .. }) => {
            assert!(
                offset < input.len(),
                "offset {offset} not inside {} octets",
                input.len()
            );
        }
        Err(e @ DecodeError::BadHex { .. }) => panic!("octet input cannot give {e}"),
    }
}

fn octets(hex: &str) -> Vec<u8> {
    match pdu::decode_hex(hex) {
        Ok(_) => {}
        Err(e) => panic!("vector {hex} does not decode: {e}"),
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
        .collect()
}

#[test]
fn random_octets() {
    let mut rng = StdRng::seed_from_u64(0x6772_6964);
    for _ in 0..20_000 {
        let len = rng.random_range(0..180);
        let buf: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        check(&buf);
    }
}

#[test]
fn random_octets_behind_a_plausible_header() {
    // Random data after a real SMSC field and first octet reaches the deeper fields.
    let mut rng = StdRng::seed_from_u64(23_040);
    for _ in 0..20_000 {
        let mut buf = vec![0x00, rng.random_range(0..4u8) | (rng.random::<u8>() & 0x7C)];
        let len = rng.random_range(0..160);
        buf.extend((0..len).map(|_| rng.random::<u8>()));
        check(&buf);
    }
}

#[test]
fn every_truncation_of_the_vectors() {
    for hex in VECTORS {
        let raw = octets(hex);
        for n in 0..raw.len() {
            check(&raw[..n]);
            assert!(
                pdu::decode(&raw[..n]).is_err(),
                "{hex}: a prefix of {n} octets decoded"
            );
        }
    }
}

#[test]
fn every_single_octet_corruption_of_the_vectors() {
    for hex in VECTORS {
        let raw = octets(hex);
        for i in 0..raw.len() {
            for v in [0x00, 0x7F, 0x80, 0xFF, raw[i] ^ 0x01, raw[i] ^ 0x40] {
                let mut m = raw.clone();
                m[i] = v;
                check(&m);
            }
        }
    }
}

#[test]
fn random_hex_text() {
    let mut rng = StdRng::seed_from_u64(7);
    let alphabet = b"0123456789ABCDEFabcdef \t\nxG";
    for _ in 0..20_000 {
        let len = rng.random_range(0..120);
        let s: String = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
            .collect();
        if let Err(DecodeError::BadHex { position }) = pdu::decode_hex(&s) {
            assert!(position <= s.trim().len());
        }
    }
}

#[test]
fn length_fields_beyond_the_input_are_errors_not_allocations() {
    // UDL 0xFF with two octets of data; address length 0xFF; SMSC length 0xFF.
    assert!(matches!(
        pdu::decode_hex("000405815995F8000062118241300023FF432C"),
        Err(DecodeError::Invalid {
            offset: 16,
            field: "TP-UDL",
            ..
        })
    ));
    assert!(matches!(
        pdu::decode_hex("0004FF81"),
        Err(DecodeError::Invalid { offset: 2, .. })
    ));
    assert!(matches!(
        pdu::decode_hex("FF91"),
        Err(DecodeError::Invalid { offset: 0, .. })
    ));
    // UCS2 with UDL 140 and four octets present.
    assert!(matches!(
        pdu::decode_hex(concat!("000405815995F800086211824130002380", "4E2D5174")),
        Err(DecodeError::Truncated {
            offset: 17,
            needed: 124,
            ..
        })
    ));
}
