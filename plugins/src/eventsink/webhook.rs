//! The webhook sink: each event POSTed as `application/json` (ureq over rustls). HTTP 2xx is
//! the acknowledgement; 4xx other than 408 and 429 rejects the event for good (it goes to the
//! dead-letter folder); anything else is retried.

use std::{sync::Arc, time::Duration};

use super::{
    delivery::{Failure, Transport},
    tls::{SinkUrl, TlsSettings},
};

pub struct WebhookSettings {
    pub url: String,
    pub timeout: Duration,
    pub tls: TlsSettings,
    /// Header name and value (the value is secret).
    pub auth: Option<(String, String)>,
}

pub struct Webhook {
    agent: ureq::Agent,
    url: SinkUrl,
    auth: Option<(String, String)>,
}

/// Whether an HTTP status says that this request will never succeed as it is.
fn is_permanent_rejection(status: u16) -> bool {
    (400..500).contains(&status) && status != 408 && status != 429
}

impl Webhook {
    /// Checks the settings (URL, CA file, header name) and builds the client.
    pub fn new(s: WebhookSettings) -> Result<Self, String> {
        let url = SinkUrl::parse(
            "webhook-url",
            &s.url,
            &["http", "https"],
            "webhook-auth-header-env or webhook-auth-header-file (e.g. 'Basic ...')",
        )?;
        if let Some((name, _)) = &s.auth {
            ureq::http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                format!("webhook-auth-header-name '{name}' is not a valid header name")
            })?;
        }
        let mut tls = ureq::tls::TlsConfig::builder().disable_verification(!s.tls.verify);
        if let Some(certs) = s.tls.ca_certs()? {
            let certs = certs
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(s.timeout))
            .tls_config(tls.build())
            .user_agent(concat!("recognizer-eventsink/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Self {
            agent,
            url,
            auth: s.auth,
        })
    }

    /// The URL for messages (secrets redacted).
    pub fn redacted_url(&self) -> &str {
        &self.url.redacted
    }
}

impl Transport for Webhook {
    fn deliver(&mut self, json: &str) -> Result<(), Failure> {
        let event_id = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| v.get("event_id").and_then(|i| i.as_str()).map(String::from))
            .unwrap_or_default();
        let mut request = self
            .agent
            .post(self.url.as_str())
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", &event_id)
            .header("X-Recognizer-Event-Id", &event_id);
        if let Some((name, value)) = &self.auth {
            request = request.header(name.as_str(), value.as_str());
        }
        match request.send(json) {
            Ok(mut response) => {
                let status = response.status();
                // Read the body so that the connection can be reused; its content does not matter.
                let _ = response.body_mut().read_to_vec();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(Failure {
                        message: format!("{}: HTTP status {status}", self.url.redacted),
                        permanent: is_permanent_rejection(status.as_u16()),
                    })
                }
            }
            Err(e) => Err(Failure::retry(format!(
                "{}: {}",
                self.url.redacted,
                self.url.scrub(&e.to_string())
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let make = |url: &str| {
            Webhook::new(WebhookSettings {
                url: url.into(),
                timeout: Duration::from_secs(1),
                tls: TlsSettings {
                    ca_file: None,
                    verify: true,
                },
                auth: None,
            })
        };
        assert!(make("https://hooks.example/path?x=1").is_ok());
        assert!(
            make("ftp://x/")
                .err()
                .unwrap()
                .contains("scheme must be http or https")
        );
        assert!(
            make("http//x")
                .err()
                .unwrap()
                .contains("Invalid webhook-url")
        );
    }

    #[test]
    fn which_statuses_reject_for_good() {
        assert!(is_permanent_rejection(400) && is_permanent_rejection(404));
        assert!(!is_permanent_rejection(408) && !is_permanent_rejection(429));
        assert!(!is_permanent_rejection(500) && !is_permanent_rejection(302));
    }
}
