//! The `candidate_parse` fuzz target.
//!
//! Fuzzes the SDP `candidate` attribute parser (RFC 8839 §5.1) and the ICE credential checks.
//!
//! Besides "never panics", it checks the round trip every `Candidate` promises: what parses
//! writes an attribute that parses back to an equal candidate and writes identically, and a
//! builder fed the parsed fields makes the same candidate (unless RFC 8839 §5.1 forbids it:
//! a host candidate with a related address is accepted on input but never built). A
//! candidate whose address is a host name (`NamedCandidate`) round-trips the same way, and
//! resolving it makes a `Candidate` that round-trips too.

use librice_proto::candidate::{
    Candidate, CandidateError, CandidateType, MAX_CANDIDATE_LEN, NamedCandidate, validate_pwd,
    validate_ufrag,
};

/// Runs one input.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);

    let _ = std::hint::black_box(validate_ufrag(&text));
    let _ = std::hint::black_box(validate_pwd(&text));

    if let Ok(named) = NamedCandidate::parse(&text) {
        let written = named.to_string();
        assert!(
            written.len() <= MAX_CANDIDATE_LEN,
            "written form too long: {written:?}"
        );
        let again = NamedCandidate::parse(&written)
            .unwrap_or_else(|e| panic!("{written:?} (from {text:?}) does not parse back: {e}"));
        assert_eq!(again, named, "round trip of {text:?} through {written:?}");
        assert_eq!(again.to_string(), written, "writing is not canonical");
        for ip in [[192, 0, 2, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()] {
            if let Ok(resolved) = named.resolve(ip) {
                let line = resolved.to_string();
                assert_eq!(Candidate::parse(&line).as_ref(), Ok(&resolved), "{line:?}");
            }
        }
    }

    let candidate = match Candidate::parse(&text) {
        Ok(candidate) => candidate,
        Err(error) => {
            std::hint::black_box(error.to_string());
            return;
        }
    };

    let written = candidate.to_string();
    assert!(
        written.len() <= MAX_CANDIDATE_LEN,
        "written form too long: {written:?}"
    );
    let again = Candidate::parse(&written)
        .unwrap_or_else(|e| panic!("{written:?} (from {text:?}) does not parse back: {e}"));
    assert_eq!(
        again, candidate,
        "round trip of {text:?} through {written:?}"
    );
    assert_eq!(again.to_string(), written, "writing is not canonical");

    let mut builder = Candidate::builder(
        candidate.foundation(),
        candidate.candidate_type(),
        candidate.transport(),
        candidate.address(),
    )
    .component(candidate.component())
    .priority(candidate.priority());
    if let Some(related) = candidate.related_address() {
        builder = builder.related_address(related);
    }
    for (name, value) in candidate.extensions() {
        builder = builder.extension(name, value);
    }
    match builder.build() {
        Ok(rebuilt) => assert_eq!(rebuilt, candidate, "the builder disagrees with the parser"),
        Err(CandidateError::RelatedAddressOnHost) => {
            assert_eq!(candidate.candidate_type(), CandidateType::Host);
            assert!(candidate.related_address().is_some());
        }
        Err(error) => panic!("a parsed candidate does not rebuild: {error} ({written:?})"),
    }
}
