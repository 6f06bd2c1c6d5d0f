//! `Status::parse`, `Capability::parse` and `Greeting::parse` never panic on arbitrary bytes;
//! every value they return re-encodes to a line that parses back to an equal value. The other
//! response helpers (`parse_continuation`, `parse_pair`, `parse_decimal`) never panic either.
//!
//! The input is tried whole and also line by line (split at LF, CR before it dropped), so a
//! seed can be a whole CAPA reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3_proto::response::{
    Capability, Greeting, Status, parse_continuation, parse_decimal, parse_pair,
};

/// `encode` output minus its CRLF, checked to end in CRLF.
fn strip_crlf(encoded: &[u8]) -> &[u8] {
    encoded.strip_suffix(b"\r\n").unwrap_or_else(|| {
        panic!(
            "encoding ends in CRLF: {:?}",
            encoded.escape_ascii().to_string()
        )
    })
}

fn check_line(line: &[u8]) {
    let mut out = Vec::new();

    if let Ok(status) = Status::parse(line) {
        out.clear();
        status.encode(&mut out);
        assert_eq!(
            Status::parse(strip_crlf(&out)),
            Ok(status),
            "status {:?} re-encoded as {:?}",
            line.escape_ascii().to_string(),
            out.escape_ascii().to_string()
        );
        if let Some(code) = status.code {
            let _ = code.known();
        }
    }

    if let Ok(greeting) = Greeting::parse(line) {
        out.clear();
        greeting.status.encode(&mut out);
        assert_eq!(
            Greeting::parse(strip_crlf(&out)),
            Ok(greeting),
            "greeting {:?} re-encoded as {:?}",
            line.escape_ascii().to_string(),
            out.escape_ascii().to_string()
        );
        if let Some(ts) = greeting.timestamp {
            assert!(pop3_proto::apop::is_valid_timestamp(ts));
        }
    }

    if let Ok(cap) = Capability::parse(line) {
        out.clear();
        cap.encode(&mut out);
        assert_eq!(
            Capability::parse(strip_crlf(&out)),
            Ok(cap),
            "capability {:?} re-encoded as {:?}",
            line.escape_ascii().to_string(),
            out.escape_ascii().to_string()
        );
    }

    let _ = parse_continuation(line);
    if let Ok((first, second)) = parse_pair(line) {
        let _ = parse_decimal(first);
        let _ = parse_decimal(second);
    }
}

fuzz_target!(|data: &[u8]| {
    check_line(data);
    for line in data.split(|&b| b == b'\n') {
        check_line(line.strip_suffix(b"\r").unwrap_or(line));
    }
});
