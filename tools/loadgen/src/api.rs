//! Sending through the server API (`--api-key`): the message phase posts each message to
//! `POST {node}/api/messages` on the sender's node instead of emitting it on the sender's
//! socket, and reads the HTTP answer as the ack (201 with `{ message }`, or an error status
//! with `{ error }`). Deliveries are tracked as for socket sends; the sender's own socket gets
//! a copy too (the API tells every socket of the sender), counted apart.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::client::Hub;

/// Requests on their way at once; past it the pacer waits (and reports the lower rate).
const IN_FLIGHT: usize = 512;

#[derive(Clone)]
pub struct ApiSender {
    client: reqwest::Client,
    authorization: Arc<str>,
    in_flight: Arc<Semaphore>,
}

impl ApiSender {
    pub fn new(key: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(IN_FLIGHT)
            .build()?;
        Ok(Self {
            client,
            authorization: format!("Bearer {key}").into(),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        })
    }

    /// Posts one message; its outcome goes to the tracker as the ack of `seq`.
    pub async fn send(&self, hub: &Arc<Hub>, url: &str, seq: usize, body: String) {
        let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
            return;
        };
        let request = self
            .client
            .post(format!("{url}/api/messages"))
            .header("authorization", &*self.authorization)
            .header("content-type", "application/json")
            .body(body);
        let hub = hub.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let answer = match request.send().await {
                Ok(response) => {
                    let created = response.status() == reqwest::StatusCode::CREATED;
                    let status = response.status();
                    match response.text().await {
                        Ok(text) if created => format!("[{text}]"),
                        Ok(text) => error_ack(&format!("HTTP {status}: {text}")),
                        Err(err) => error_ack(&format!("HTTP {status}: {err}")),
                    }
                }
                Err(err) => error_ack(&format!("request failed: {err}")),
            };
            hub.tracker.on_ack(Some(seq), &answer);
        });
    }
}

/// An ack payload carrying `reason` as its error, as the tracker reads socket acks.
fn error_ack(reason: &str) -> String {
    serde_json::json!([{ "error": reason }]).to_string()
}

/// The body of `POST /api/messages`.
pub fn body(from: &str, to: &str, content: &str) -> String {
    serde_json::json!({ "from": from, "to": to, "content": content }).to_string()
}
