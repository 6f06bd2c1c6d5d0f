//! Replays the `C:`/`S:` transcripts in `tests/transcripts/` (RFC examples) against the
//! server machine, line by line, one command at a time and also all pipelined in one write.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;

/// A message of exactly `size` wire octets: a Subject header, a blank line, filler lines.
fn message_of_size(n: usize, size: usize) -> Vec<u8> {
    let mut m = format!("Subject: message {n}\r\n\r\n").into_bytes();
    while m.len() + 2 < size {
        let room = size - m.len() - 2;
        let line = room.min(60);
        m.extend(std::iter::repeat_n(b'x', line));
        m.extend_from_slice(b"\r\n");
    }
    assert_eq!(m.len(), size, "size {size} cannot be built");
    m
}

struct Transcript {
    name: String,
    setup: Vec<(String, Vec<usize>)>,
    steps: Vec<(Vec<u8>, Vec<String>)>,
    greeting: Vec<String>,
    commit: Option<Vec<usize>>,
}

fn parse(name: &str, text: &str) -> Transcript {
    let mut t = Transcript {
        name: name.to_owned(),
        setup: Vec::new(),
        steps: Vec::new(),
        greeting: Vec::new(),
        commit: None,
    };
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("maildrop ") {
            let mut words = rest.split(' ');
            let user = words.next().unwrap().to_owned();
            t.setup
                .push((user, words.map(|w| w.parse().unwrap()).collect()));
        } else if let Some(cmd) = line.strip_prefix("C: ") {
            t.steps
                .push((format!("{cmd}\r\n").into_bytes(), Vec::new()));
        } else if let Some(expected) = line.strip_prefix("S: ") {
            match t.steps.last_mut() {
                Some((_, exp)) => exp.push(expected.to_owned()),
                None => t.greeting.push(expected.to_owned()),
            }
        } else if let Some(rest) = line.strip_prefix("commit") {
            t.commit = Some(
                rest.split_whitespace()
                    .map(|w| w.parse().unwrap())
                    .collect(),
            );
        } else {
            panic!("{name}: cannot read {line:?}");
        }
    }
    t
}

fn harness(t: &Transcript) -> (Harness, Vec<Vec<u8>>) {
    let mut h = Harness::new(plaintext_config());
    let mut messages = Vec::new();
    for (user, sizes) in &t.setup {
        let u = h.users.iter_mut().find(|u| u.name == user).unwrap();
        u.messages = sizes
            .iter()
            .enumerate()
            .map(|(i, s)| message_of_size(i + 1, *s))
            .collect();
        messages = u.messages.clone();
    }
    (h, messages)
}

/// Expands expected lines: `<message n>` becomes that message's stuffed lines.
fn expected_lines(exp: &[String], messages: &[Vec<u8>]) -> Vec<String> {
    let mut out = Vec::new();
    for e in exp {
        if let Some(n) = e
            .strip_prefix("<message ")
            .and_then(|r| r.strip_suffix('>'))
        {
            let m = &messages[n.parse::<usize>().unwrap() - 1];
            for line in String::from_utf8_lossy(m).split_terminator("\r\n") {
                out.push(if line.starts_with('.') {
                    format!(".{line}")
                } else {
                    line.to_owned()
                });
            }
        } else {
            out.push(e.clone());
        }
    }
    out
}

fn check(name: &str, got: &str, expected: &[String]) {
    let got: Vec<&str> = got.split_terminator("\r\n").collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "{name}: {got:#?} vs {expected:#?}"
    );
    for (g, e) in got.iter().zip(expected) {
        match e.strip_suffix('*') {
            Some(prefix) => assert!(
                g.starts_with(prefix),
                "{name}: {g:?} does not start with {prefix:?}"
            ),
            None => assert_eq!(g, e, "{name}"),
        }
    }
}

fn replay(t: &Transcript) {
    // One command at a time.
    let (mut h, messages) = harness(t);
    check(&t.name, &h.take_output(), &t.greeting);
    for (cmd, exp) in &t.steps {
        let got = h.send(cmd);
        check(
            &format!("{} after {:?}", t.name, String::from_utf8_lossy(cmd)),
            &got,
            &expected_lines(exp, &messages),
        );
    }
    if let Some(commit) = &t.commit {
        assert_eq!(h.seen.commits.concat(), *commit, "{}", t.name);
    }
    // Everything pipelined in one write: the same answers, in order (R2449-PIPE-1).
    let (mut h, messages) = harness(t);
    let mut all = t.greeting.clone();
    let mut input = Vec::new();
    for (cmd, exp) in &t.steps {
        input.extend_from_slice(cmd);
        all.extend(expected_lines(exp, &messages));
    }
    let got = h.take_output() + &h.send(&input);
    check(&format!("{} pipelined", t.name), &got, &all);
}

#[test]
fn rfc_transcripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        replay(&parse(&path.file_name().unwrap().to_string_lossy(), &text));
        count += 1;
    }
    assert!(count >= 4, "transcripts missing");
}
