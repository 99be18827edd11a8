//! The display name a user picks when creating a session.

use std::fmt;

/// Most characters a username may have: enough for any real name, small enough to keep every
/// `users` payload (which lists every user) bounded.
pub const MAX_USERNAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Trimmed, 1..=64 characters, no control characters (they break layouts and logs).
    pub fn parse(raw: &str) -> Option<Self> {
        let name = raw.trim();
        let chars = name.chars().count();
        let ok = (1..=MAX_USERNAME_CHARS).contains(&chars) && !name.chars().any(char::is_control);
        ok.then(|| Self(name.to_owned()))
    }

    /// A name read back from Redis; the Node server accepted anything, and we serve it as is.
    pub(crate) fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_trimmed() {
        assert_eq!(
            Username::parse("  alice ").map(|u| u.0),
            Some("alice".into())
        );
    }

    #[test]
    fn unicode_names_count_characters_not_bytes() {
        assert!(Username::parse(&"é".repeat(64)).is_some());
        assert!(Username::parse(&"é".repeat(65)).is_none());
    }

    #[test]
    fn empty_blank_control_or_huge_names_are_refused() {
        for bad in [
            "",
            "   ",
            "a\u{0}b",
            "line\nbreak",
            "bell\u{7}",
            &"x".repeat(1000),
        ] {
            assert!(Username::parse(bad).is_none(), "{bad:?}");
        }
    }
}
