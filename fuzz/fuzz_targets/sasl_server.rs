//! Every SASL server mechanism fed arbitrary client messages, with the application answering
//! lookups arbitrarily.
//!
//! Invariants: nothing panics; a mechanism never reports `Success` or asks to check
//! credentials after it reported `Failure` or rejected the client's data (an exchange that
//! failed stays failed); challenges are bounded in size.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pop3_proto::sasl::{Mechanism, SaslServer, ScramCredentials, ScramHash, ServerStep};

#[derive(Debug, Arbitrary)]
struct Input {
    mechanism: u8,
    initial: Option<Vec<u8>>,
    steps: Vec<Step>,
}

#[derive(Debug, Arbitrary)]
enum Step {
    Client(Vec<u8>),
    Credentials(bool),
    TokenRejected(Vec<u8>),
}

fn finished(step: &ServerStep<'_>) -> bool {
    matches!(step, ServerStep::Failure)
}

fuzz_target!(|input: Input| {
    let mechanism = Mechanism::ALL[input.mechanism as usize % Mechanism::ALL.len()];
    let mut server = SaslServer::new(mechanism, b"server-nonce", "pop.example.test");
    let mut failed = match server.start(input.initial.as_deref()) {
        Ok(step) => {
            if let ServerStep::Challenge(c) = &step {
                assert!(c.len() < 4096);
            }
            finished(&step)
        }
        Err(_) => true,
    };
    for step in input.steps.into_iter().take(16) {
        // Only the client's data can fail an exchange; a misplaced application call is an
        // error of the caller that leaves the exchange as it was.
        let from_client = matches!(step, Step::Client(_));
        let result = match step {
            Step::Client(data) => server.step(&data),
            Step::Credentials(known) => {
                let creds = ScramHash::from_mechanism(mechanism).filter(|_| known).and_then(|hash| {
                    ScramCredentials::derive(hash, "pencil", b"salt", 4096).ok()
                });
                server.scram_credentials(creds)
            }
            Step::TokenRejected(json) => server.token_rejected(&json),
        };
        match result {
            Ok(step) => {
                if failed {
                    assert!(
                        !matches!(step, ServerStep::Success { .. } | ServerStep::CheckPassword { .. }),
                        "{mechanism}: progress after failure: {step:?}"
                    );
                }
                if let ServerStep::Challenge(c) = &step {
                    assert!(c.len() < 64 * 1024);
                }
                failed |= finished(&step);
            }
            Err(_) => failed |= from_client,
        }
    }
});
