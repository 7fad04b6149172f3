//! Completion callbacks (`callbackUrl`): once an import is final, its status body is POSTed to
//! the URL, signed with `X-Signature: sha256=<hex HMAC-SHA256 of the body>` under the tenant's
//! signing secret. Any 2xx is delivery; anything else, or no answer in 10 s, is retried with
//! exponential back-off and jitter for up to 24 hours. Deliveries run in a task of the API
//! processes (`tasks::callbacks`), never in a worker; this module holds the rules: which URLs
//! may be called, the signature, the back-off, and one attempt.
//!
//! A tenant must not reach the service's own network through it: a URL whose host resolves to
//! a loopback, private, link-local (or otherwise non-public) address is refused at intake and
//! again at each delivery, and the request goes to the very address that was checked (no
//! second resolution for DNS rebinding to slip through; redirects are not followed).

use crate::store::callbacks::Due;
use crate::store::imports;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How long a receiver gets to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a failing callback is retried, from the import's end.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// True for an address a callback must not reach: loopback, private, link-local, unspecified,
/// shared (CGNAT), multicast and broadcast, and their IPv4-mapped IPv6 forms.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// A callback URL, checked: http(s), a host, and (unless `allow_private`) only public
/// addresses. Returns the URL and the addresses its host resolved to.
pub async fn check_url(
    raw: &str,
    allow_private: bool,
) -> Result<(reqwest::Url, Vec<SocketAddr>), String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https URLs are called back, not {}",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a callback URL cannot carry credentials; the body is signed instead".into());
    }
    let host = url.host_str().ok_or("the URL has no host")?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let addresses: Vec<SocketAddr> = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((lookup.as_str(), port)),
    )
    .await
    .map_err(|_| format!("{host} did not resolve within 5 s"))?
    .map_err(|e| format!("{host} does not resolve: {e}"))?
    .collect();
    if addresses.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    if !allow_private && let Some(bad) = addresses.iter().find(|a| is_forbidden(a.ip())) {
        return Err(format!(
            "{host} resolves to {}, a loopback, private or link-local address; callbacks go to public addresses only (the service's operator can allow others with --callback-allow-private)",
            bad.ip()
        ));
    }
    Ok((url, addresses))
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes a key of any length; this cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The wait before attempt `attempts + 1`: `initial * 2^(attempts - 1)`, at most an hour,
/// times a jitter in [0.5, 1.5).
pub fn backoff(initial: Duration, attempts: u32, jitter: f64) -> Duration {
    let exp = 2f64.powi(attempts.saturating_sub(1).min(30) as i32);
    let base = (initial.as_secs_f64() * exp).min(MAX_BACKOFF.as_secs_f64());
    Duration::from_secs_f64(base * (0.5 + jitter.clamp(0.0, 1.0)))
}

/// POSTs the import's status; `Err` says why it did not count as delivered.
pub async fn attempt(pool: &PgPool, due: &Due, allow_private: bool) -> Result<(), String> {
    let status = imports::status(pool, due.tenant_id, due.import_id)
        .await
        .map_err(|e| format!("the status could not be read: {e}"))?
        .ok_or("the import is gone")?;
    let body = serde_json::to_vec(&status).map_err(|e| e.to_string())?;
    // Checked again now: the name may resolve elsewhere than at intake.
    let (url, addresses) = check_url(&due.url, allow_private).await?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs(&host, &addresses)
        .user_agent(concat!("contact-import/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-signature", signature(&due.secret, &body))
        .header("x-contact-import-id", due.import_id.to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {} s", TIMEOUT.as_secs())
            } else {
                format!("the request failed: {e}")
            }
        })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_forbidden_public_ones_are_not() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "ff02::1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "100.128.0.1", "2606:4700::1111"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_for_scheme_credentials_and_addresses() {
        assert!(check_url("ftp://example.com/x", true).await.is_err());
        assert!(check_url("not a url", true).await.is_err());
        assert!(
            check_url("https://user:pw@127.0.0.1/x", true)
                .await
                .is_err()
        );
        let refused = check_url("http://127.0.0.1:8080/done", false)
            .await
            .unwrap_err();
        assert!(refused.contains("127.0.0.1"), "{refused}");
        assert!(check_url("http://[::1]/done", false).await.is_err());
        assert!(
            check_url("http://169.254.169.254/latest", false)
                .await
                .is_err()
        );
        assert!(check_url("http://localhost/done", false).await.is_err());
        let (url, addresses) = check_url("http://127.0.0.1:8080/done", true).await.unwrap();
        assert_eq!(url.port(), Some(8080));
        assert_eq!(addresses[0].port(), 8080);
    }

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_an_hour() {
        let initial = Duration::from_secs(5);
        assert_eq!(backoff(initial, 1, 0.5), Duration::from_secs(5));
        assert_eq!(backoff(initial, 2, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(initial, 4, 0.5), Duration::from_secs(40));
        assert_eq!(backoff(initial, 1, 0.0), Duration::from_millis(2500));
        assert_eq!(backoff(initial, 30, 0.5), Duration::from_secs(3600));
    }
}
