//! `Command::parse` on arbitrary bytes never panics; whatever parses re-encodes to a line that
//! parses back to the same command, and that encoding is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3_proto::{Command, Parsed};

/// Encodes `cmd` and checks that the line parses back to it, whole.
fn roundtrip(cmd: Command<'_>) -> Vec<u8> {
    let mut line = Vec::new();
    cmd.encode(&mut line);
    assert!(line.ends_with(b"\r\n"), "encoding ends in CRLF: {line:?}");
    assert_eq!(
        Command::parse(&line),
        Ok(Parsed::Complete((line.len(), cmd))),
        "encode then parse of {cmd:?} (line {:?})",
        line.escape_ascii().to_string()
    );
    line
}

fuzz_target!(|data: &[u8]| {
    match Command::parse(data) {
        Ok(Parsed::Complete((len, cmd))) => {
            assert!(
                len >= 1 && len <= data.len(),
                "length {len} of {}",
                data.len()
            );
            assert_eq!(data[len - 1], b'\n', "a command ends at its LF");
            assert!(
                !data[..len - 1].contains(&b'\n'),
                "only the first line is taken"
            );
            let line = roundtrip(cmd);
            // Canonical form: encoding what the canonical line parses to gives the same line.
            if let Ok(Parsed::Complete((_, again))) = Command::parse(&line) {
                let mut twice = Vec::new();
                again.encode(&mut twice);
                assert_eq!(twice, line, "encoding is a fixed point");
            }
        }
        Ok(Parsed::Partial) => assert!(!data.contains(&b'\n'), "Partial despite a LF"),
        Err(_) => {}
    }
    // The same bytes as one line without terminator (how the server's framing calls it).
    if let Ok(cmd) = Command::parse_line(data) {
        roundtrip(cmd);
    }
});
