//! Tests that need more than one process: the SIGKILL crash test of UPDATE for both
//! formats, and two processes racing for the same maildrop.
//!
//! The children are this same binary, re-run with `POP3_MAILDROP_CHILD` set, hence
//! `harness = false`. Arguments that do not start with `-` filter tests by name.
//! `POP3_CRASH_KILLS` changes the number of kills per format (default 220),
//! `POP3_CRASH_SEED` the random seed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeMap,
    env, fs,
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use pop3_maildrop::{
    Maildir, MaildirStore, Maildrop, Mbox, MboxStore, OpenError, PathTemplate,
    lock::{DotLock, try_lock_file},
    mbox::temp_path,
};

const CHILD: &str = "POP3_MAILDROP_CHILD";

fn main() {
    if let Ok(role) = env::var(CHILD) {
        child(&role);
        return;
    }
    let filters: Vec<String> = env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tests: [(&str, fn()); 4] = [
        ("crash_maildir_commit", crash_maildir),
        ("crash_mbox_commit", crash_mbox),
        ("two_processes_exactly_one_wins", two_processes),
        (
            "fcntl_lock_of_another_program_excludes_us",
            foreign_fcntl_lock,
        ),
    ];
    let start = Instant::now();
    let (mut passed, mut failed, mut filtered) = (0, 0, 0);
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            filtered += 1;
            continue;
        }
        let t = Instant::now();
        match std::panic::catch_unwind(test) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.2?})", t.elapsed());
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED ({:.2?})", t.elapsed());
            }
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; 0 ignored; 0 measured; {filtered} filtered out; finished in {:.2}s\n",
        start.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(101);
    }
}

// ---- the child side ----------------------------------------------------------------------

fn open(kind: &str, path: &Path) -> Result<Box<dyn Maildrop>, OpenError> {
    match kind {
        "maildir" => MaildirStore::new(PathTemplate::new("unused"))
            .open_path(path)
            .map(|m: Maildir| Box::new(m) as Box<dyn Maildrop>),
        "mbox" => MboxStore::new(PathTemplate::new("unused"))
            .open_path(path)
            .map(|m: Mbox| Box::new(m) as Box<dyn Maildrop>),
        other => panic!("unknown kind {other}"),
    }
}

/// `commit <kind> <path> <i,j,...>`: open, say `O`; say `C`, commit, say `D`.
/// `race <kind> <path>`: wait for a line on stdin, open, say `won` (then hold until stdin
/// closes) or `in-use`.
/// `fcntl <path>`: take an fcntl lock like mpop would, say `locked`, hold until stdin closes.
fn child(role: &str) {
    let args: Vec<String> = env::args().collect();
    let mut out = std::io::stdout();
    match role {
        "commit" => {
            let deleted: Vec<usize> = args[3]
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            let m = open(&args[1], Path::new(&args[2])).unwrap();
            writeln!(out, "O").unwrap();
            writeln!(out, "C").unwrap();
            m.commit(&deleted).unwrap();
            writeln!(out, "D").unwrap();
        }
        "race" => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            match open(&args[1], Path::new(&args[2])) {
                Ok(m) => {
                    writeln!(out, "won").unwrap();
                    let _ = std::io::stdin().read_to_end(&mut Vec::new());
                    drop(m);
                }
                Err(OpenError::InUse) => writeln!(out, "in-use").unwrap(),
                Err(e) => writeln!(out, "error {e}").unwrap(),
            }
        }
        "fcntl" => {
            let f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&args[1])
                .unwrap();
            try_lock_file(&f).unwrap();
            writeln!(out, "locked").unwrap();
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        other => panic!("unknown role {other}"),
    }
}

fn spawn(role: &str, args: &[&str]) -> Child {
    Command::new(env::current_exe().unwrap())
        .args(args)
        .env(CHILD, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

// ---- randomness --------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = env::var("POP3_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("  seed {seed} (POP3_CRASH_SEED to replay)");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn kills() -> usize {
    env::var("POP3_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(220)
}

// ---- the crash test ----------------------------------------------------------------------

/// Message `i` of a crash fixture: unique, of varied size, with lines that mbox must quote.
fn crash_message(i: usize, big: bool) -> Vec<u8> {
    let mut m = format!("X-Index: {i}\nSubject: crash test {i}\n\n").into_bytes();
    let lines = if big { 100 + (i * 37) % 200 } else { 1 + i % 5 };
    for l in 0..lines {
        match l % 9 {
            0 => m.extend_from_slice(b"From the start of a line\n"),
            4 => m.extend_from_slice(b">From already quoted\n"),
            _ => m.extend_from_slice(format!("line {l} of message {i} .............\n").as_bytes()),
        }
    }
    m
}

/// How one run of the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Killed before it said `O` (during open: lock, new/ → cur/, sizing).
    Opening,
    /// Killed after `C` and before `D`: during the commit.
    Committing,
    /// `D` seen: the commit returned before the kill.
    Done,
}

/// Reads the child's lines until `until` or EOF; returns whether `until` was seen.
fn read_until(reader: &mut BufReader<ChildStdout>, seen: &mut Vec<String>, until: &str) -> bool {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let line = line.trim().to_owned();
        let hit = line == until;
        seen.push(line);
        if hit {
            return true;
        }
    }
}

/// Runs the child, kills it at a random point, and reports where it was.
fn run_and_kill(
    kind: &str,
    path: &Path,
    deleted: &[usize],
    rng: &mut Rng,
    commit_us: u64,
) -> Phase {
    let list = deleted
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut child = spawn("commit", &[kind, path.to_str().unwrap(), &list]);
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    if rng.below(5) == 0 {
        // A kill anywhere from the start: mostly during open.
        std::thread::sleep(Duration::from_micros(rng.below(6_000)));
    } else if read_until(&mut reader, &mut seen, "C") {
        // Inside the commit (or just after it).
        let delay = rng.below(commit_us * 5 / 4 + 1);
        if delay > 0 {
            std::thread::sleep(Duration::from_micros(delay));
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    seen.extend(rest.lines().map(str::to_owned));
    let has = |s: &str| seen.iter().any(|l| l == s);
    if has("D") {
        Phase::Done
    } else if has("C") {
        Phase::Committing
    } else {
        Phase::Opening
    }
}

/// Measures how long the child's commit takes (microseconds, median of 3 uncut runs).
fn calibrate(kind: &str, setup: &dyn Fn() -> (tempfile::TempDir, PathBuf, Vec<usize>)) -> u64 {
    let mut times: Vec<u64> = (0..3)
        .map(|_| {
            let (_dir, path, deleted) = setup();
            let list = deleted
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(",");
            let mut child = spawn("commit", &[kind, path.to_str().unwrap(), &list]);
            let mut reader = BufReader::new(child.stdout.take().unwrap());
            let mut seen = Vec::new();
            assert!(read_until(&mut reader, &mut seen, "C"));
            let t = Instant::now();
            assert!(read_until(&mut reader, &mut seen, "D"), "{seen:?}");
            let us = t.elapsed().as_micros() as u64;
            child.wait().unwrap();
            us
        })
        .collect();
    times.sort_unstable();
    times[1]
}

#[derive(Default)]
struct Tally {
    phases: BTreeMap<Phase, usize>,
    /// Commit-phase kills that left some but not all marked messages (Maildir only).
    partial: usize,
    /// Kills after which marked messages were all gone / all present.
    all_gone: usize,
    all_present: usize,
    leftover_temp: usize,
    leftover_dotlock: usize,
}

impl Tally {
    fn print(&self, kind: &str, kills: usize, elapsed: Duration, commit_us: u64) {
        println!(
            "  {kind}: {kills} SIGKILLs in {elapsed:.2?} (commit takes ~{commit_us} us); phases {:?}; \
             marked all gone {}, all present {}, partly gone {}; leftover temp file {}, leftover dotlock {}",
            self.phases,
            self.all_gone,
            self.all_present,
            self.partial,
            self.leftover_temp,
            self.leftover_dotlock
        );
    }
}

const MAILDIR_MESSAGES: usize = 120;

fn maildir_fixture(rng: &mut Rng) -> (tempfile::TempDir, PathBuf, Vec<usize>) {
    let (root, md) = maildir();
    for i in 0..MAILDIR_MESSAGES {
        // Half still in new/, so kills also land in the new/ → cur/ moves.
        let (sub, suffix) = if i % 2 == 0 {
            ("new", "")
        } else {
            ("cur", ":2,")
        };
        put(
            &md,
            sub,
            &format!("{}.M{i}P1.crash{suffix}", 1_700_000_000 + i),
            &crash_message(i, false),
        );
    }
    let deleted = (0..MAILDIR_MESSAGES)
        .filter(|_| rng.below(3) != 0)
        .collect();
    (root, md, deleted)
}

fn crash_maildir() {
    let mut rng = Rng::new();
    let setup_rng = std::cell::RefCell::new(Rng(rng.next() | 1));
    let commit_us = calibrate("maildir", &|| maildir_fixture(&mut setup_rng.borrow_mut()));
    let n = kills();
    let start = Instant::now();
    let mut tally = Tally::default();
    for _ in 0..n {
        let (_root, md, deleted) = maildir_fixture(&mut rng);
        let phase = run_and_kill("maildir", &md, &deleted, &mut rng, commit_us);
        *tally.phases.entry(phase).or_default() += 1;

        // Never in tmp/, never our files: every listed message is one of ours.
        assert!(names(&md, "tmp").is_empty());
        let mut m = MaildirStore::new(PathTemplate::new("unused"))
            .open_path(&md)
            .expect("reopen after the kill: the fcntl lock died with the child");
        let mut present = [false; MAILDIR_MESSAGES];
        for (k, bytes) in all_messages_in(&mut m, 64 * 1024).into_iter().enumerate() {
            let index =
                std::str::from_utf8(&bytes[..bytes.iter().position(|&b| b == b'\n').unwrap()])
                    .unwrap()
                    .strip_prefix("X-Index: ")
                    .unwrap()
                    .parse::<usize>()
                    .unwrap();
            assert!(!present[index], "message {index} listed twice");
            present[index] = true;
            assert_eq!(
                bytes,
                crash_message(index, false),
                "message {index} changed"
            );
            let uid = String::from_utf8(m.listing().uid(k).unwrap().to_vec()).unwrap();
            assert_eq!(
                uid,
                format!("{}.M{index}P1.crash", 1_700_000_000 + index),
                "uid of {index}"
            );
        }
        for (i, &p) in present.iter().enumerate() {
            if !deleted.contains(&i) {
                assert!(p, "unmarked message {i} lost ({phase:?})");
            }
        }
        let gone = deleted.iter().filter(|&&i| !present[i]).count();
        match phase {
            Phase::Opening => assert_eq!(gone, 0, "deleted before the commit"),
            Phase::Done => assert_eq!(gone, deleted.len(), "commit returned Ok"),
            Phase::Committing => {}
        }
        if gone == deleted.len() {
            tally.all_gone += 1;
        } else if gone == 0 {
            tally.all_present += 1;
        } else {
            tally.partial += 1;
        }
        drop(m);
    }
    tally.print("maildir", n, start.elapsed(), commit_us);
    assert!(
        n < 200 || tally.phases.get(&Phase::Committing).copied().unwrap_or(0) > 0,
        "no kill landed inside a commit"
    );
}

const MBOX_MESSAGES: usize = 40;

fn mbox_text(present: &[bool]) -> Vec<u8> {
    let mut text = Vec::new();
    for (i, _) in present.iter().enumerate().filter(|(_, p)| **p) {
        text.extend_from_slice(
            format!("From crash{i}@example.org Mon Jan  1 00:00:00 2024\n").as_bytes(),
        );
        for line in crash_message(i, true).split_inclusive(|&b| b == b'\n') {
            let gts = line.iter().take_while(|&&b| b == b'>').count();
            if line[gts..].starts_with(b"From ") {
                text.push(b'>');
            }
            text.extend_from_slice(line);
        }
        text.push(b'\n');
    }
    text
}

fn mbox_fixture(rng: &mut Rng) -> (tempfile::TempDir, PathBuf, Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice");
    fs::write(&path, mbox_text(&[true; MBOX_MESSAGES])).unwrap();
    let deleted = (0..MBOX_MESSAGES).filter(|_| rng.below(3) == 0).collect();
    (dir, path, deleted)
}

fn crash_mbox() {
    let mut rng = Rng::new();
    let setup_rng = std::cell::RefCell::new(Rng(rng.next() | 1));
    let commit_us = calibrate("mbox", &|| mbox_fixture(&mut setup_rng.borrow_mut()));
    let n = kills();
    let start = Instant::now();
    let mut tally = Tally::default();
    for _ in 0..n {
        let (_dir, path, deleted) = mbox_fixture(&mut rng);
        let phase = run_and_kill("mbox", &path, &deleted, &mut rng, commit_us);
        *tally.phases.entry(phase).or_default() += 1;
        if temp_path(&path).exists() {
            tally.leftover_temp += 1;
        }
        let dotlock_contents = fs::read(DotLock::path_for(&path)).ok();
        if dotlock_contents.is_some() {
            tally.leftover_dotlock += 1;
        }
        // The file is byte for byte the old or the new mbox: never corrupt, never half.
        let before = mbox_text(&[true; MBOX_MESSAGES]);
        let after = mbox_text(
            &(0..MBOX_MESSAGES)
                .map(|i| !deleted.contains(&i))
                .collect::<Vec<_>>(),
        );
        let now = fs::read(&path).unwrap();
        let committed = if now == before && !deleted.is_empty() {
            false
        } else {
            assert!(
                now == after,
                "mbox is neither the old nor the new one ({phase:?})"
            );
            true
        };
        match phase {
            Phase::Opening => assert!(
                !committed || deleted.is_empty(),
                "changed before the commit"
            ),
            Phase::Done => assert!(committed, "commit returned Ok"),
            Phase::Committing => {}
        }
        if committed {
            tally.all_gone += 1;
        } else {
            tally.all_present += 1;
        }
        // It opens again (stale dotlock broken, temp file removed) with the right messages.
        let mut m = MboxStore::new(PathTemplate::new("unused"))
            .open_path(&path)
            .unwrap_or_else(|e| {
                panic!("reopen after the kill: {e}; dotlock left: {dotlock_contents:?}")
            });
        assert!(
            !temp_path(&path).exists(),
            "leftover temp file removed under the lock"
        );
        let expected: Vec<Vec<u8>> = (0..MBOX_MESSAGES)
            .filter(|i| !committed || !deleted.contains(i))
            .map(|i| crash_message(i, true))
            .collect();
        assert!(
            all_messages_in(&mut m, 64 * 1024) == expected,
            "messages differ after a kill"
        );
        drop(m);
    }
    tally.print("mbox", n, start.elapsed(), commit_us);
    assert!(
        n < 200 || tally.phases.get(&Phase::Committing).copied().unwrap_or(0) > 0,
        "no kill landed inside a commit"
    );
}

// ---- two processes -----------------------------------------------------------------------

fn two_processes() {
    let (_root, md) = maildir();
    put(&md, "new", "1700000000.a.h", b"x\n");
    let mbox_dir = tempfile::tempdir().unwrap();
    let mbox = mbox_dir.path().join("alice");
    fs::write(&mbox, b"From a\nx\n").unwrap();
    let rounds = 15;
    for (kind, path) in [("maildir", &md), ("mbox", &mbox)] {
        for round in 0..rounds {
            let mut a = spawn("race", &[kind, path.to_str().unwrap()]);
            let mut b = spawn("race", &[kind, path.to_str().unwrap()]);
            // Release both at once.
            for c in [&mut a, &mut b] {
                c.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
            }
            let mut answers = Vec::new();
            for c in [&mut a, &mut b] {
                let mut line = String::new();
                BufReader::new(c.stdout.as_mut().unwrap())
                    .read_line(&mut line)
                    .unwrap();
                answers.push(line.trim().to_owned());
            }
            answers.sort();
            assert_eq!(answers, ["in-use", "won"], "{kind} round {round}");
            // While the winner holds it, this process is refused too.
            assert!(matches!(open(kind, path), Err(OpenError::InUse)), "{kind}");
            for mut c in [a, b] {
                drop(c.stdin.take());
                assert!(c.wait().unwrap().success());
            }
            // Released with the winner's exit.
            drop(open(kind, path).unwrap());
        }
    }
    println!("  {rounds} rounds each for maildir and mbox: exactly one winner every time");
}

fn foreign_fcntl_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("alice");
    fs::write(&mbox, b"From a\nx\n").unwrap();
    let mut holder = spawn("fcntl", &[mbox.to_str().unwrap()]);
    let mut line = String::new();
    BufReader::new(holder.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    assert!(matches!(open("mbox", &mbox), Err(OpenError::InUse)));
    // The fcntl lock is tried first: no dotlock was left behind by the failed open.
    assert!(!DotLock::path_for(&mbox).exists());
    drop(holder.stdin.take());
    holder.wait().unwrap();
    drop(open("mbox", &mbox).unwrap());
}
