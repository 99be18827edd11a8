//! `API_KEY`: the bearer keys the server API accepts. Secrets: compared in constant time,
//! never logged (their `Debug` says how many there are, nothing else).

use subtle::ConstantTimeEq;

/// The shortest key accepted: 32 characters, ~190 bits when drawn from base64, far past
/// guessing over HTTP.
pub const MIN_KEY_CHARS: usize = 32;

/// One key or several (a rotation: the new one added, clients moved, the old one removed).
#[derive(Clone)]
pub struct ApiKeys(Vec<Vec<u8>>);

impl ApiKeys {
    /// Parses `API_KEY`: comma-separated keys, blanks around each trimmed; refuses an empty
    /// list or any key shorter than [`MIN_KEY_CHARS`], naming the setting but never the key.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let keys: Vec<&str> = raw.split(',').map(str::trim).collect();
        if keys.iter().all(|key| key.is_empty()) {
            return Err("API_KEY is set but holds no key".into());
        }
        for (position, key) in keys.iter().enumerate() {
            let chars = key.chars().count();
            if chars < MIN_KEY_CHARS {
                return Err(format!(
                    "API_KEY: key {} of {} has {chars} characters; each key needs at least \
                     {MIN_KEY_CHARS}",
                    position + 1,
                    keys.len()
                ));
            }
        }
        Ok(Self(keys.iter().map(|k| k.as_bytes().to_vec()).collect()))
    }

    /// Whether `presented` is one of the keys. Every key is compared, each in constant time
    /// (`subtle`), so the answer's timing tells neither which key matched nor how much of one.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let mut matched = subtle::Choice::from(0);
        for key in &self.0 {
            matched |= key.as_slice().ct_eq(presented);
        }
        matched.into()
    }
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys(<{} redacted>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn one_key_or_several_are_accepted_and_nothing_else() {
        let keys = ApiKeys::parse(&format!("{KEY}, {OTHER}")).expect("two long keys");
        assert!(keys.accepts(KEY.as_bytes()));
        assert!(keys.accepts(OTHER.as_bytes()));
        assert!(!keys.accepts(&KEY.as_bytes()[..31]));
        assert!(!keys.accepts(format!("{KEY}x").as_bytes()));
        assert!(!keys.accepts(b""));
    }

    #[test]
    fn a_short_or_empty_key_is_refused_without_showing_it() {
        for raw in [
            "short-secret-key",
            &format!("{KEY},tooshort-secret"),
            "",
            " , ",
        ] {
            let err = ApiKeys::parse(raw).expect_err("refused");
            assert!(err.contains("API_KEY"), "{err}");
            assert!(!err.contains("secret"), "the key leaked: {err}");
        }
    }

    #[test]
    fn debug_never_shows_a_key() {
        let keys = ApiKeys::parse(KEY).expect("a long key");
        assert!(!format!("{keys:?}").contains(KEY));
    }
}
