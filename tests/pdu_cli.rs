//! `gridsms pdu decode|encode` run as a real process: the JSON contract of issue 2, exit
//! codes, and one stderr line on bad input.

use serde_json::{Value, json};
use std::process::{Command, Output};

fn gridsms(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .args(args)
        .output()
        .expect("run gridsms")
}

fn decode(hex: &str) -> Value {
    let out = gridsms(&["pdu", "decode", hex]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON object on one line: {stdout}"
    );
    serde_json::from_str(&stdout).expect("JSON")
}

fn assert_bad_input(args: &[&str]) {
    let out = gridsms(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().count(),
        1,
        "one stderr line for {args:?}: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

const KEYS: [&str; 12] = [
    "type",
    "smsc",
    "sender",
    "recipient",
    "text",
    "encoding",
    "timestamp",
    "concat",
    "message_ref",
    "status",
    "discharge_time",
    "status_report_requested",
];

fn assert_exact_keys(v: &Value) {
    let obj = v.as_object().expect("object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = KEYS.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want);
}

#[test]
fn decode_deliver_from_the_readme() {
    let v = decode("07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07");
    assert_exact_keys(&v);
    assert_eq!(
        v,
        json!({
            "type": "deliver", "smsc": "+31624000000", "sender": "+31641600986", "recipient": null,
            "text": "How are you?", "encoding": "gsm7", "timestamp": "2002-08-26T19:37:41+00:00",
            "concat": null, "message_ref": null, "status": null, "discharge_time": null,
            "status_report_requested": null
        })
    );
}

#[test]
fn decode_concatenated_class_1_deliver() {
    let v = decode(
        "07919471227210244405852122F039F1015062712181804F050003190202E4E8309B5E7683DAFC319A5E76B340F73D9A5D7683A6E93268FD9ED3CB6EF67B0E5AD172B19B2C2693C9602E90355D6683A6F0B007946E8382F5393BEC26BB00",
    );
    assert_eq!(v["concat"], json!({"ref": 25, "total": 2, "seq": 2}));
    assert_eq!(v["sender"], "12220");
    assert_eq!(v["timestamp"], "2010-05-26T17:12:18+02:00");
}

#[test]
fn decode_alphanumeric_sender() {
    let v = decode(
        "07919333852804000412D0F7FBDD454FB75D693A0000903002801153402BCD301E9F0605D9E971191483C140412A35690D52832063D2F9040599A058EE05A3BD6430580E",
    );
    assert_eq!(v["sender"], "www.tim.it");
    assert_eq!(v["text"], "Maxxi Alice 100 ATTIVATA FINO AL 19/04/2009");
}

#[test]
fn decode_submit_with_8bit_data_as_lowercase_hex() {
    let v = decode("07914400000000F001000B811000000000F000040B48692074686572652E2E2E");
    assert_exact_keys(&v);
    assert_eq!(
        v,
        json!({
            "type": "submit", "smsc": "+44000000000", "sender": null, "recipient": "01000000000",
            "text": "48692074686572652e2e2e", "encoding": "8bit", "timestamp": null, "concat": null,
            "message_ref": 0, "status": null, "discharge_time": null, "status_report_requested": false
        })
    );
}

#[test]
fn decode_status_report() {
    let v = decode("07914306073011F006270B913426565711F7012081111345400120811174054043");
    assert_exact_keys(&v);
    assert_eq!(
        v,
        json!({
            "type": "status-report", "smsc": "+34607003110", "sender": null, "recipient": "+43626575117",
            "text": null, "encoding": "gsm7", "timestamp": "2010-02-18T11:31:54+01:00", "concat": null,
            "message_ref": 39, "status": 67, "discharge_time": "2010-02-18T11:47:50+01:00",
            "status_report_requested": null
        })
    );
}

#[test]
fn encode_then_decode_a_chinese_bill_notice() {
    let text = "【国网供电】尊敬的客户：您户号0123456789的2026年11月电费已出账，本月用电量236千瓦时，应交电费128.50元，请于12月15日前缴清。如有疑问请致电95598。回复TD退订。";
    let out = gridsms(&[
        "pdu",
        "encode",
        "--to",
        "+8613800138000",
        "--smsc",
        "+8613800100500",
        "--status-report",
        "--validity-minutes",
        "1440",
        "--ref",
        "200",
        text,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    let mut joined = String::new();
    for (i, seg) in lines.iter().enumerate() {
        let obj = seg.as_object().expect("object");
        assert_eq!(obj.len(), 2);
        let hex = seg["pdu"].as_str().expect("pdu");
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        // length = TPDU octets without the 9-octet SMSC field.
        assert_eq!(seg["length"].as_u64(), Some((hex.len() / 2 - 9) as u64));
        let d = decode(hex);
        assert_eq!(d["type"], "submit");
        assert_eq!(d["recipient"], "+8613800138000");
        assert_eq!(d["smsc"], "+8613800100500");
        assert_eq!(d["status_report_requested"], true);
        assert_eq!(d["message_ref"], 200);
        assert_eq!(d["encoding"], "ucs2");
        assert_eq!(d["concat"], json!({"ref": 200, "total": 2, "seq": i + 1}));
        joined.push_str(d["text"].as_str().expect("text"));
    }
    assert_eq!(joined, text);
}

#[test]
fn encode_short_gsm_text_is_one_segment_without_smsc() {
    let out = gridsms(&["pdu", "encode", "--to", "95598", "CX"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"pdu\":\"00010005815995F8000002432C\",\"length\":12}\n"
    );
}

#[test]
fn bad_input_exits_2_with_one_stderr_line() {
    assert_bad_input(&["pdu", "decode", "0G"]);
    assert_bad_input(&["pdu", "decode", "07911326040000F0040B91134661"]);
    assert_bad_input(&["pdu", "decode", ""]);
    assert_bad_input(&["pdu", "encode", "--to", "1380013800x", "hi"]);
    assert_bad_input(&["pdu", "encode", "--to", "13800138000", ""]);
    assert_bad_input(&["pdu", "encode", "--to", "13800138000", "--ref", "256", "hi"]);
    assert_bad_input(&[
        "pdu",
        "encode",
        "--to",
        "13800138000",
        "--validity-minutes",
        "abc",
        "hi",
    ]);
    assert_bad_input(&[
        "pdu",
        "encode",
        "--to",
        "13800138000",
        "--validity-minutes",
        "0",
        "hi",
    ]);
    assert_bad_input(&["pdu", "encode", "--to", "13800138000", "--smsc", "+", "hi"]);
}
