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
        let tenant = tenants::by_api_key(&state.pool, key)
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown API key"))?;
        // Every write of a tenant draws from its rate limit, in whichever process it lands.
        if parts.method == Method::POST || parts.method == Method::DELETE {
            let settings = &state.settings;
            let (rate, burst) = (
                settings.rate_limit_rps.max(0.001),
                settings.rate_limit_burst.max(1),
            );
            if let Some(wait) =
                limits::take_token(&state.pool, tenant.id, rate, f64::from(burst)).await?
            {
                return Err(ApiError::rate_limited(wait, rate, burst));
            }
        }
        Ok(tenant)
    }
}
