//! `.local` host names: validation, the case-insensitive key they are compared by
//! (RFC 6762 §16), and the random `<uuid>.local` names of
//! draft-ietf-mmusic-mdns-ice-candidates.

use std::fmt::Write as _;

use rand_core::Rng;

use super::MdnsError;

/// The longest name accepted, in presentation form without the trailing dot (RFC 1035
/// §2.3.4: 255 octets on the wire).
const MAX_NAME_TEXT: usize = 253;
/// The longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// A validated `.local` host name.
///
/// Invariants: `text` is the name as the caller spelled it, without a trailing dot; it has
/// at least two labels, the last being `local` in any case, every label is 1 to 63 bytes
/// with no `\`, and the whole is at most 253 bytes. `key` is `text` with ASCII letters
/// lowered (RFC 6762 §16: names compare case-insensitively for ASCII, byte for byte
/// otherwise), and is what maps are keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LocalName {
    text: String,
    key: String,
}

impl LocalName {
    /// Checks `name` and makes its key; a trailing dot is dropped.
    pub(super) fn parse(name: &str) -> Result<Self, MdnsError> {
        let text = name.strip_suffix('.').unwrap_or(name);
        let invalid = || MdnsError::InvalidName {
            name: name.to_owned(),
        };
        if text.is_empty() || text.len() > MAX_NAME_TEXT || text.contains('\\') {
            return Err(invalid());
        }
        if text
            .split('.')
            .any(|label| label.is_empty() || label.len() > MAX_LABEL)
        {
            return Err(invalid());
        }
        let key = text.to_ascii_lowercase();
        // RFC 6762 §3: only names ending in ".local." are resolved by multicast; a bare
        // "local" is the domain, not a host name.
        if !key.ends_with(".local") {
            return Err(MdnsError::NotLocal {
                name: name.to_owned(),
            });
        }
        Ok(Self {
            text: text.to_owned(),
            key,
        })
    }

    /// The name as the caller gave it (without a trailing dot).
    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// The lowered key the name compares by.
    pub(super) fn key(&self) -> &str {
        &self.key
    }
}

/// The comparison key of a name read from the wire, given its labels: `None` when it
/// cannot equal any [`LocalName`] (a label holding a dot or not UTF-8, or no labels).
pub(super) fn wire_key<'a>(labels: impl Iterator<Item = &'a [u8]>) -> Option<String> {
    let mut key = String::new();
    for label in labels {
        let label = std::str::from_utf8(label).ok()?;
        if label.is_empty() || label.contains('.') || label.contains('\\') {
            return None;
        }
        if !key.is_empty() {
            key.push('.');
        }
        key.push_str(label);
        if key.len() > MAX_NAME_TEXT {
            return None;
        }
    }
    if key.is_empty() {
        return None;
    }
    key.make_ascii_lowercase();
    Some(key)
}

/// A random `<uuid>.local` name: a version 4 UUID (RFC 9562 §5.4) from `rng`, written as
/// browsers write theirs, 8-4-4-4-12 lowercase hex digits.
pub(super) fn random_name<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10
    let mut name = String::with_capacity(42);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            name.push('-');
        }
        // Writing to a String cannot fail.
        let _ = write!(name, "{b:02x}");
    }
    name.push_str(".local");
    name
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn local_names_are_accepted_and_keyed_case_insensitively() {
        let name = LocalName::parse("Host-1.LOCAL.").unwrap();
        assert_eq!(name.text(), "Host-1.LOCAL");
        assert_eq!(name.key(), "host-1.local");
    }

    #[test]
    fn other_names_are_refused() {
        for bad in ["example.com", "local", "x.local.com", "xlocal"] {
            assert!(
                matches!(LocalName::parse(bad), Err(MdnsError::NotLocal { .. })),
                "{bad}"
            );
        }
        let long_label = format!("{}.local", "a".repeat(64));
        let long_name = format!("{}local", "abcdefg.".repeat(32));
        for bad in [
            "",
            ".",
            "a..local",
            ".local",
            r"a\.b.local",
            &long_label,
            &long_name,
        ] {
            assert!(
                matches!(LocalName::parse(bad), Err(MdnsError::InvalidName { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn wire_keys_match_local_names() {
        let labels: [&[u8]; 2] = [b"ABC", b"Local"];
        assert_eq!(wire_key(labels.into_iter()).as_deref(), Some("abc.local"));
        let dotted: [&[u8]; 2] = [b"a.b", b"local"];
        assert_eq!(wire_key(dotted.into_iter()), None);
        let binary: [&[u8]; 2] = [b"\xff", b"local"];
        assert_eq!(wire_key(binary.into_iter()), None);
        assert_eq!(wire_key(std::iter::empty()), None);
    }

    #[test]
    fn random_names_are_v4_uuids() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let name = random_name(&mut rng);
        let uuid = name.strip_suffix(".local").unwrap();
        let groups: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(
            uuid.chars()
                .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert!(groups[2].starts_with('4'));
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert!(LocalName::parse(&name).is_ok());
        assert_ne!(random_name(&mut rng), name);
    }
}
