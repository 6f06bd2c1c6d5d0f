//! Proves the steady state allocates nothing: once a session is logged in and its buffers
//! have grown, commands (STAT, LIST n, UIDL n, NOOP, DELE, RSET, RETR, TOP, LIST, UIDL) cost
//! zero heap allocations. A counting global allocator sees every allocation of this test
//! binary, which holds this one test only.
#![allow(unsafe_code, clippy::unwrap_used)] // a GlobalAlloc impl is unsafe by definition

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use pop3_proto::{
    Listing, ServerEvent,
    dot::Progress,
    server::{ServerConfig, ServerConnection},
};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MESSAGE: &[u8] = b"Subject: x\n\n.line one\nline two\n..\n";

/// One round of commands, answered like an application would; returns bytes written.
fn round(conn: &mut ServerConnection, wire: &mut Vec<u8>) -> usize {
    conn.receive(
        Duration::ZERO,
        b"STAT\r\nLIST 1\r\nUIDL 2\r\nNOOP\r\nDELE 1\r\nRSET\r\nRETR 2\r\nTOP 3 1\r\nLIST\r\nUIDL\r\n",
    );
    let mut written = 0;
    loop {
        let mut progressed = false;
        while let Some(event) = conn.poll_event() {
            progressed = true;
            assert!(
                matches!(event, ServerEvent::RetrieveMessage { .. }),
                "{event:?}"
            );
            for piece in MESSAGE.chunks(5) {
                if conn.body_chunk(piece).unwrap() == Progress::Done {
                    break;
                }
            }
            conn.body_end().unwrap();
        }
        wire.clear();
        let n = conn.poll_transmit(wire);
        written += n;
        if !progressed && n == 0 {
            return written;
        }
    }
}

#[test]
fn steady_state_commands_do_not_allocate() {
    let at_start = ALLOCATIONS.load(Ordering::Relaxed);
    let mut config = ServerConfig::new();
    config.allow_plaintext_without_tls = true;
    let mut conn = ServerConnection::new(Arc::new(config), Duration::ZERO, None).unwrap();
    let mut wire = Vec::with_capacity(64 * 1024);
    conn.receive(Duration::ZERO, b"USER a\r\nPASS b\r\n");
    let Some(ServerEvent::CheckPassword { .. }) = conn.poll_event() else {
        panic!("expected CheckPassword");
    };
    let mut listing = Listing::new();
    for i in 0..50u32 {
        listing.push(40, format!("uid{i:08}").as_bytes()).unwrap();
    }
    conn.accept_login(listing).unwrap();
    assert!(
        ALLOCATIONS.load(Ordering::Relaxed) > at_start,
        "the counter sees allocations"
    );
    // Warm-up: buffers reach their working size.
    for _ in 0..3 {
        assert!(round(&mut conn, &mut wire) > 0);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut written = 0;
    for _ in 0..1000 {
        written += round(&mut conn, &mut wire);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(
        written > 1000 * 500,
        "the rounds did real work ({written} bytes)"
    );
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in 10,000 commands"
    );
}
