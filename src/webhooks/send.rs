//! One POST of a webhook: the body signed with HMAC-SHA256 keyed with WEBHOOK_SECRET, the
//! headers of docs/protocol.md ("Webhooks"), no redirect followed, 5 s for the whole exchange.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How long a receiver has to answer (docs/protocol.md): past it, the delivery is tried again.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client every delivery of a node shares (its connection pool).
pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        // A redirect would send the signed body somewhere else than the operator said.
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// `sha256=<hex HMAC-SHA256 of body>`, the `X-Privmsg-Signature` header.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 2 * digest.len());
    out.push_str("sha256=");
    for byte in digest.iter() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// What the receiver made of a delivery.
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// Anything else (the status, or the error's kind, for the log).
    Failed(String),
}

/// POSTs `body` (event `kind`, delivery `id`) to `url`.
pub async fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    secret: &[u8],
    kind: &str,
    id: &str,
    body: String,
) -> Outcome {
    let signed = signature(secret, body.as_bytes());
    let sent = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Privmsg-Event", kind)
        .header("X-Privmsg-Delivery", id)
        .header("X-Privmsg-Signature", signed)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(answer) if answer.status().is_success() => Outcome::Delivered,
        Ok(answer) => Outcome::Failed(format!("status {}", answer.status().as_u16())),
        Err(err) if err.is_timeout() => Outcome::Failed("no answer within 5 s".into()),
        // Without the URL's query (it may carry a token), just the kind of failure.
        Err(err) => Outcome::Failed(format!("{}", err.without_url())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2.
    #[test]
    fn the_signature_is_hex_hmac_sha256() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
