//! The webhooks' settings, checked once at start: a bad value refuses to start, naming its
//! setting (and never printing the secret).

use std::{sync::Arc, time::Duration};

use crate::settings::Settings;

/// The shortest secret accepted: 32 characters, as the server API's keys.
const MIN_SECRET_CHARS: usize = 32;

/// The events a node may send (docs/protocol.md, "Webhooks").
pub const CREATED: &str = "message.created";
pub const UNREAD: &str = "message.unread";

#[derive(Clone)]
pub struct WebhookConfig {
    pub url: reqwest::Url,
    /// Shared, never printed: `Debug` below leaves it out.
    pub secret: Arc<[u8]>,
    pub created: bool,
    pub unread: bool,
    pub unread_after: Duration,
    pub concurrency: usize,
    pub max_pending: usize,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("host", &self.url.host_str())
            .field("secret", &"<redacted>")
            .field("created", &self.created)
            .field("unread", &self.unread)
            .field("unread_after", &self.unread_after)
            .finish_non_exhaustive()
    }
}

impl WebhookConfig {
    /// `None` when WEBHOOK_URL is unset; an error naming the setting that is wrong.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, String> {
        let Some(url) = settings.webhook_url.as_deref().map(str::trim) else {
            return Ok(None);
        };
        let url = reqwest::Url::parse(url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or("--webhook-url (WEBHOOK_URL) must be an http:// or https:// URL")?;
        let secret = settings.webhook_secret.as_deref().unwrap_or_default();
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(format!(
                "--webhook-secret (WEBHOOK_SECRET) must be set, at least {MIN_SECRET_CHARS} \
                 characters, when WEBHOOK_URL is"
            ));
        }
        let (mut created, mut unread) = (false, false);
        for event in settings.webhook_events.split(',').map(str::trim) {
            match event {
                CREATED => created = true,
                UNREAD => unread = true,
                // The value is not a secret: naming it helps the operator.
                other => {
                    return Err(format!(
                        "--webhook-events (WEBHOOK_EVENTS): unknown event {other:?}, expected \
                         a comma-separated subset of {CREATED}, {UNREAD}"
                    ));
                }
            }
        }
        Ok(Some(Self {
            url,
            secret: secret.as_bytes().into(),
            created,
            unread,
            unread_after: Duration::from_secs(settings.webhook_unread_after_secs),
            concurrency: settings.webhook_concurrency,
            max_pending: settings.webhook_max_pending,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(url: Option<&str>, secret: Option<&str>, events: &str) -> Settings {
        let mut settings = Settings::defaults();
        settings.webhook_url = url.map(Into::into);
        settings.webhook_secret = secret.map(Into::into);
        settings.webhook_events = events.into();
        settings
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn no_url_no_webhooks() {
        let settings = with(None, None, "nonsense");
        assert!(
            WebhookConfig::from_settings(&settings)
                .expect("ok")
                .is_none()
        );
    }

    #[test]
    fn a_bad_value_names_its_setting_and_never_the_secret() {
        let short = "too-short-secret";
        let cases = [
            (with(Some("ftp://x"), Some(SECRET), UNREAD), "WEBHOOK_URL"),
            (with(Some("not a url"), Some(SECRET), UNREAD), "WEBHOOK_URL"),
            (
                with(Some("http://x"), Some(short), UNREAD),
                "WEBHOOK_SECRET",
            ),
            (with(Some("http://x"), None, UNREAD), "WEBHOOK_SECRET"),
            (
                with(Some("http://x"), Some(SECRET), "message.gone"),
                "WEBHOOK_EVENTS",
            ),
            (with(Some("http://x"), Some(SECRET), ""), "WEBHOOK_EVENTS"),
        ];
        for (settings, name) in cases {
            let err = WebhookConfig::from_settings(&settings).expect_err(name);
            assert!(err.contains(name), "{err}");
            assert!(!err.contains(short) && !err.contains(SECRET), "{err}");
        }
    }

    #[test]
    fn events_are_a_subset() {
        let both = with(
            Some("https://h/p"),
            Some(SECRET),
            "message.unread, message.created",
        );
        let config = WebhookConfig::from_settings(&both)
            .expect("ok")
            .expect("on");
        assert!(config.created && config.unread);
        assert!(!format!("{config:?}").contains(SECRET));
        let settings = with(Some("https://h/p"), Some(SECRET), CREATED);
        let config = WebhookConfig::from_settings(&settings)
            .expect("ok")
            .expect("on");
        assert!(config.created && !config.unread);
    }

    #[test]
    fn the_delay_is_bounded_by_its_parser() {
        use clap::Parser;
        for bad in ["0", "86401"] {
            let parsed =
                Settings::try_parse_from(["privmsg-server", "--webhook-unread-after-secs", bad]);
            let err = parsed.expect_err(bad).to_string();
            assert!(err.contains("webhook-unread-after-secs"), "{err}");
        }
    }
}
