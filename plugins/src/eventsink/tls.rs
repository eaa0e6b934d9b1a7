//! What both network sinks share: their URLs (checked, with secrets kept out of every message),
//! secrets read from a variable or a file, and the rustls client configuration.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

/// TLS settings shared by both network sinks.
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// PEM file of trusted CA certificates; replaces the built-in Mozilla roots when set.
    pub ca_file: Option<PathBuf>,
    /// `false` disables certificate verification (testing only).
    pub verify: bool,
}

impl TlsSettings {
    pub fn ca_certs(&self) -> Result<Option<Vec<CertificateDer<'static>>>, String> {
        let Some(path) = &self.ca_file else {
            return Ok(None);
        };
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("Could not read tls-ca-file '{}': {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "tls-ca-file '{}' holds no PEM certificate",
                path.display()
            ));
        }
        Ok(Some(certs))
    }

    /// The rustls client configuration (ring provider): the CA file's roots, else Mozilla's.
    pub fn rustls_config(&self) -> Result<rustls::ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        if !self.verify {
            return Ok(builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth());
        }
        let mut roots = rustls::RootCertStore::empty();
        match self.ca_certs()? {
            Some(certs) => {
                for cert in certs {
                    roots.add(cert).map_err(|e| format!("tls-ca-file: {e}"))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        Ok(builder.with_root_certificates(roots).with_no_client_auth())
    }
}

/// A secret from an environment variable or a file (first line, trimmed). The value is never
/// logged nor put into an error message.
pub fn read_secret(
    what: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<String>, String> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err(format!("{what}: environment variable '{var}' is not set")),
        };
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{what}: could not read '{}': {e}", path.display()))?;
        let value = text.lines().next().unwrap_or("").trim().to_string();
        if value.is_empty() {
            return Err(format!("{what}: '{}' is empty", path.display()));
        }
        return Ok(Some(value));
    }
    Ok(None)
}

/// `url` fit for messages: user information and the values of query parameters replaced by
/// `***` (`https://hooks.example/events?token=***`). Works on any text, parsable or not.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_string(),
    };
    let (before_fragment, fragment) = match tail.find('#') {
        Some(i) => tail.split_at(i),
        None => (tail, ""),
    };
    let tail = match before_fragment.split_once('?') {
        None => before_fragment.to_string(),
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) => format!("{key}=***"),
                    None if pair.is_empty() => String::new(),
                    None => "***".to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
    };
    let fragment = if fragment.is_empty() { "" } else { "#***" };
    format!("{scheme}{authority}{tail}{fragment}")
}

/// A network sink's URL, checked: one of `schemes`, a host, no user information (credentials
/// have properties of their own that keep them out of messages and read-back).
pub struct SinkUrl {
    pub uri: ureq::http::Uri,
    /// For messages: see [`redact_url`].
    pub redacted: String,
    /// Parts of the URL that must not show in any message (query values).
    secrets: Vec<String>,
    raw: String,
}

impl SinkUrl {
    pub fn parse(
        what: &str,
        url: &str,
        schemes: &[&str],
        credentials: &str,
    ) -> Result<Self, String> {
        let redacted = redact_url(url);
        let uri: ureq::http::Uri = url
            .parse()
            .map_err(|e| format!("Invalid {what} '{redacted}': {e}"))?;
        let scheme = uri.scheme_str().unwrap_or("");
        if !schemes.contains(&scheme) {
            return Err(format!(
                "Invalid {what} '{redacted}': the scheme must be {}",
                schemes.join(" or ")
            ));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(format!(
                "Invalid {what} '{redacted}': user information (user:password@) is not accepted in the URL; use {credentials}"
            ));
        }
        if uri.host().is_none_or(|h| h.is_empty()) {
            return Err(format!("Invalid {what} '{redacted}': no host"));
        }
        let secrets = uri
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .map(|pair| pair.split_once('=').map_or(pair, |(_, v)| v))
            .filter(|v| v.len() >= 4)
            .map(String::from)
            .collect();
        Ok(Self {
            uri,
            redacted,
            secrets,
            raw: url.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// `text` (e.g. a client library's error) with the URL and its secret parts redacted.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.raw, &self.redacted);
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "***");
        }
        out
    }

    /// The host, without IPv6 brackets.
    pub fn host(&self) -> String {
        self.uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string()
    }

    /// Checks that the host can name a TLS server.
    pub fn check_tls_name(&self, what: &str) -> Result<(), String> {
        ServerName::try_from(self.host())
            .map(|_| ())
            .map_err(|e| format!("Invalid {what} '{}': {e}", self.redacted))
    }
}

/// `tls-verify=false`: accepts any certificate (signatures are still checked).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("https://u:p@hooks.example:8443/a/b?token=s3cret&x=1#frag"),
            "https://***@hooks.example:8443/a/b?token=***&x=***#***"
        );
        assert_eq!(redact_url("http://host/path"), "http://host/path");
        assert_eq!(redact_url("http//x?k"), "http//x?***");
        assert_eq!(redact_url("mqtt://a:b@host"), "mqtt://***@host");
    }

    #[test]
    fn user_information_is_refused_without_showing_it() {
        let err = SinkUrl::parse(
            "webhook-url",
            "http://alice:pw-s3cret@host/x",
            &["http", "https"],
            "webhook-auth-header-env",
        )
        .err()
        .unwrap();
        assert!(
            err.contains("user information") && !err.contains("pw-s3cret"),
            "{err}"
        );
        let url = SinkUrl::parse("u", "http://h/x?token=s3cret-t0ken", &["http"], "").unwrap();
        assert_eq!(
            url.scrub("error for http://h/x?token=s3cret-t0ken: s3cret-t0ken"),
            "error for http://h/x?token=***: ***"
        );
    }

    #[test]
    fn secrets() {
        // SAFETY: this test alone uses this variable.
        unsafe { std::env::set_var("RECOGNIZER_TEST_SECRET_X", "Bearer s3cret") };
        assert_eq!(
            read_secret("a", Some("RECOGNIZER_TEST_SECRET_X"), None)
                .unwrap()
                .as_deref(),
            Some("Bearer s3cret")
        );
        let err = read_secret(
            "webhook-auth-header-env",
            Some("RECOGNIZER_TEST_UNSET_Y"),
            None,
        )
        .unwrap_err();
        assert!(err.contains("RECOGNIZER_TEST_UNSET_Y") && err.contains("not set"));
        assert!(
            read_secret("a", None, Some(Path::new("/nonexistent/secret")))
                .unwrap_err()
                .contains("/nonexistent/secret")
        );
        assert_eq!(read_secret("a", None, None).unwrap(), None);
    }
}
