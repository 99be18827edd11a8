//! `AUTH=jwt`: who a client is, from a token the deployment signed (docs/protocol.md,
//! "Handshake"). Verification is `jsonwebtoken`'s; this module only chooses what it accepts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::{
    domain::{UserId, Username},
    settings::Settings,
};

/// RFC 7518 §3.2: an HS256 key at least as long as the hash's output.
const MIN_SECRET_BYTES: usize = 32;

/// Who a valid token names, and until when.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: UserId,
    pub username: Username,
    /// The moment the token stops being accepted: its `exp` plus `JWT_LEEWAY_SECS`.
    pub expires_at: SystemTime,
}

/// Any token that does not name a user: missing, malformed, expired, badly signed, of another
/// algorithm (`none` included), or whose `sub` / `name` are not a userID / username. One
/// refusal for all of them, so that a client learns nothing about which check failed.
#[derive(Debug, thiserror::Error)]
#[error("invalid token")]
pub struct InvalidToken;

#[derive(Deserialize)]
struct Claims {
    sub: String,
    name: String,
    exp: u64,
}

/// The key and the rules a token is checked against, built once at start.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    /// The verifier `AUTH=jwt` asks for, or `None` in the `session` mode. A missing, short or
    /// unreadable key refuses to start, naming the setting.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, String> {
        if settings.auth == crate::settings::AuthMode::Session {
            return Ok(None);
        }
        let (key, algorithm) = match (&settings.jwt_secret, &settings.jwt_public_key_file) {
            (Some(_), Some(_)) => {
                return Err("AUTH=jwt takes one key: JWT_SECRET (HS256) or \
                            JWT_PUBLIC_KEY_FILE (RS256/ES256), not both"
                    .into());
            }
            (None, None) => {
                return Err("AUTH=jwt needs a key: JWT_SECRET (HS256) or \
                            JWT_PUBLIC_KEY_FILE (RS256/ES256)"
                    .into());
            }
            (Some(secret), None) => {
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(format!(
                        "--jwt-secret (JWT_SECRET) must be {MIN_SECRET_BYTES} bytes or more"
                    ));
                }
                let key = DecodingKey::from_secret(secret.as_bytes())
                    .map_err(|err| format!("--jwt-secret (JWT_SECRET): {err}"))?;
                (key, Algorithm::HS256)
            }
            (None, Some(path)) => public_key(path)?,
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = settings.jwt_leeway_secs;
        // A token that says when it starts to be valid is refused before then.
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &settings.jwt_issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        if let Some(audience) = &settings.jwt_audience {
            validation.set_audience(&[audience]);
            validation.required_spec_claims.insert("aud".into());
        }
        Ok(Some(Self { key, validation }))
    }

    /// The user a token names, if it is valid now.
    pub fn verify(&self, token: &str) -> Result<Identity, InvalidToken> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|err| {
                tracing::debug!(kind = ?err.kind(), "token refused");
                InvalidToken
            })?
            .claims;
        let valid_for = claims.exp.saturating_add(self.validation.leeway);
        Ok(Identity {
            user_id: UserId::parse(&claims.sub).ok_or(InvalidToken)?,
            username: Username::parse(&claims.name).ok_or(InvalidToken)?,
            expires_at: UNIX_EPOCH
                .checked_add(Duration::from_secs(valid_for))
                .ok_or(InvalidToken)?,
        })
    }
}

/// An RSA key verifies RS256 tokens, an EC one ES256: the key file decides, so that a token
/// can never choose its own algorithm.
fn public_key(path: &std::path::Path) -> Result<(DecodingKey, Algorithm), String> {
    let pem = std::fs::read(path).map_err(|err| {
        format!(
            "--jwt-public-key-file (JWT_PUBLIC_KEY_FILE) {}: {err}",
            path.display()
        )
    })?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((key, Algorithm::RS256));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        return Ok((key, Algorithm::ES256));
    }
    Err(format!(
        "--jwt-public-key-file (JWT_PUBLIC_KEY_FILE) {}: neither an RSA nor an EC public key in PEM",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn verifier() -> TokenVerifier {
        let mut settings = Settings::defaults();
        settings.auth = crate::settings::AuthMode::Jwt;
        settings.jwt_secret = Some(SECRET.into());
        TokenVerifier::from_settings(&settings)
            .expect("valid settings")
            .expect("jwt mode")
    }

    fn sign(claims: serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()).expect("a key"),
        )
        .expect("encodes")
    }

    fn later() -> u64 {
        jsonwebtoken::get_current_timestamp() + 600
    }

    #[test]
    fn a_signed_token_names_its_user() {
        let user = uuid::Uuid::new_v4().to_string();
        let token = sign(
            json!({"sub": user, "name": " ann ", "exp": later()}),
            SECRET,
        );
        let identity = verifier().verify(&token).expect("valid");
        assert_eq!(identity.user_id.as_str(), user);
        assert_eq!(identity.username.as_str(), "ann");
    }

    #[test]
    fn a_token_names_its_provider_s_user_as_is_until_its_expiry_plus_the_leeway() {
        let exp = later();
        for sub in [
            "auth0|5f7c8ec7c33c6c004bbafe82",
            "user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
            "8Xh3QoGm1bTqYk2VwZ9s0PcLd4E2",
        ] {
            let token = sign(json!({"sub": sub, "name": "ann", "exp": exp}), SECRET);
            let identity = verifier().verify(&token).expect("valid");
            assert_eq!(identity.user_id.as_str(), sub);
            let leeway = Settings::defaults().jwt_leeway_secs;
            let expires = identity
                .expires_at
                .duration_since(UNIX_EPOCH)
                .expect("after");
            assert_eq!(expires.as_secs(), exp + leeway);
        }
    }

    #[test]
    fn every_bad_token_is_refused() {
        let user = uuid::Uuid::new_v4().to_string();
        let expired = jsonwebtoken::get_current_timestamp() - 3600;
        // `alg: none`: a valid token's claims under the header {"alg":"none","typ":"JWT"},
        // without a signature.
        let valid = sign(json!({"sub": user, "name": "ann", "exp": later()}), SECRET);
        let claims = valid.split('.').nth(1).expect("three parts");
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
        let bad = [
            String::new(),
            "not.a.token".into(),
            sign(json!({"sub": user, "name": "ann", "exp": expired}), SECRET),
            sign(
                json!({"sub": user, "name": "ann", "exp": later()}),
                "another secret, long enough too!",
            ),
            sign(json!({"sub": user, "name": "ann"}), SECRET),
            sign(
                json!({"sub": "not a user", "name": "ann", "exp": later()}),
                SECRET,
            ),
            sign(json!({"sub": user, "name": "", "exp": later()}), SECRET),
            sign(json!({"name": "ann", "exp": later()}), SECRET),
            sign(
                json!({"sub": user, "name": "ann", "exp": later(), "nbf": later()}),
                SECRET,
            ),
            unsigned,
        ];
        let verifier = verifier();
        for token in bad {
            assert!(verifier.verify(&token).is_err(), "{token:?}");
        }
    }

    #[test]
    fn an_issuer_and_an_audience_once_set_are_required() {
        let mut settings = Settings::defaults();
        settings.auth = crate::settings::AuthMode::Jwt;
        settings.jwt_secret = Some(SECRET.into());
        settings.jwt_issuer = Some("login.example".into());
        settings.jwt_audience = Some("chat".into());
        let verifier = TokenVerifier::from_settings(&settings)
            .expect("valid settings")
            .expect("jwt mode");
        let user = uuid::Uuid::new_v4().to_string();
        let claims = |extra: serde_json::Value| {
            let mut claims = json!({"sub": user, "name": "ann", "exp": later()});
            if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
                claims.extend(extra.clone());
            }
            sign(claims, SECRET)
        };
        assert!(
            verifier
                .verify(&claims(json!({"iss": "login.example", "aud": "chat"})))
                .is_ok()
        );
        for bad in [
            json!({}),
            json!({"iss": "login.example"}),
            json!({"aud": "chat"}),
            json!({"iss": "elsewhere", "aud": "chat"}),
            json!({"iss": "login.example", "aud": "another"}),
        ] {
            assert!(verifier.verify(&claims(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn jwt_mode_needs_one_long_enough_key() {
        let mut settings = Settings::defaults();
        settings.auth = crate::settings::AuthMode::Jwt;
        assert!(TokenVerifier::from_settings(&settings).is_err());
        settings.jwt_secret = Some("short".into());
        let refused = TokenVerifier::from_settings(&settings)
            .err()
            .expect("refused");
        assert!(refused.contains("JWT_SECRET"), "{refused}");
        settings.jwt_public_key_file = Some("/nonexistent".into());
        assert!(TokenVerifier::from_settings(&settings).is_err());
        settings.jwt_secret = None;
        let refused = TokenVerifier::from_settings(&settings)
            .err()
            .expect("refused");
        assert!(refused.contains("JWT_PUBLIC_KEY_FILE"), "{refused}");
    }
}
