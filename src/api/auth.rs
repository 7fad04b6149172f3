//! Bearer API keys. The extractor turns `Authorization: Bearer <key>` into the key's tenant;
//! every handler that takes `Tenant` is thereby scoped to it.

use super::AppState;
use super::error::ApiError;
use crate::store::limits;
use crate::store::tenants::{self, Tenant};
use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::header;
use axum::http::request::Parts;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a key's tenant is taken from memory before it is looked up again.
const KEY_TTL: Duration = Duration::from_secs(10);
/// Most keys remembered at once; past it the memory starts over (a bound, not a policy: one
/// process seldom serves that many tenants within `KEY_TTL`).
const MAX_KNOWN_KEYS: usize = 10_000;

/// The tenants of the API keys this process has seen lately, by the key's hash, so that a
/// request with a known key costs no look-up (under load, that round trip was a third of a
/// status poll's time). Keys are only ever created today, and a key's tenant never changes;
/// a revocation, once there is one, must clear its entry here or wait `KEY_TTL`. Unknown
/// keys are not remembered: a key made a moment ago by `tenant create` works at once.
#[derive(Default)]
pub struct KnownKeys {
    keys: Mutex<HashMap<Vec<u8>, (Tenant, Instant)>>,
}

impl KnownKeys {
    /// The tenant of the key with this hash, when it was looked up less than `KEY_TTL` ago.
    fn get(&self, hash: &[u8], now: Instant) -> Option<Tenant> {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.get(hash)
            .filter(|(_, seen)| now.saturating_duration_since(*seen) < KEY_TTL)
            .map(|(tenant, _)| tenant.clone())
    }

    fn remember(&self, hash: Vec<u8>, tenant: Tenant, now: Instant) {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if keys.len() >= MAX_KNOWN_KEYS && !keys.contains_key(&hash) {
            keys.clear();
        }
        keys.insert(hash, (tenant, now));
    }
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("send your API key as Authorization: Bearer <key>")
        })?;
        let key = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, key) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
            })
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be Bearer <key>")
            })?;
        let hash = tenants::hash_key(key);
        let tenant = match state.known_keys.get(&hash, Instant::now()) {
            Some(tenant) => tenant,
            None => {
                let tenant = tenants::by_key_hash(&state.pool, &hash)
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("unknown API key"))?;
                state
                    .known_keys
                    .remember(hash, tenant.clone(), Instant::now());
                tenant
            }
        };
        // Every write of a tenant draws from its rate limit, in whichever process it lands.
        if parts.method == Method::POST || parts.method == Method::DELETE {
            let settings = &state.settings;
            let (rate, burst) = (
                settings.rate_limit_rps.max(0.001),
                settings.rate_limit_burst.max(1),
            );
            if let Some(wait) =
                limits::take_token(&state.by_key, tenant.id, rate, f64::from(burst)).await?
            {
                return Err(ApiError::rate_limited(wait, rate, burst));
            }
        }
        Ok(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn tenant(name: &str) -> Tenant {
        Tenant {
            id: Uuid::now_v7(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn a_known_key_is_served_from_memory_until_its_time_is_up() {
        let keys = KnownKeys::default();
        let start = Instant::now();
        assert!(keys.get(b"a", start).is_none());
        let a = tenant("a");
        keys.remember(b"a".to_vec(), a.clone(), start);
        let served = keys.get(b"a", start + KEY_TTL / 2).map(|t| t.id);
        assert_eq!(served, Some(a.id));
        assert!(keys.get(b"b", start).is_none());
        assert!(keys.get(b"a", start + KEY_TTL).is_none());
    }

    #[test]
    fn the_memory_of_keys_is_bounded() {
        let keys = KnownKeys::default();
        let now = Instant::now();
        for i in 0..MAX_KNOWN_KEYS + 5 {
            keys.remember(i.to_le_bytes().to_vec(), tenant("t"), now);
        }
        let held = keys.keys.lock().map(|k| k.len()).unwrap_or_default();
        assert!((1..=MAX_KNOWN_KEYS).contains(&held), "{held} keys held");
        assert!(keys.get(&(MAX_KNOWN_KEYS + 4).to_le_bytes(), now).is_some());
    }
}
