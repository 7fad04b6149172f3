//! Bearer API keys. The extractor turns `Authorization: Bearer <key>` into the key's tenant;
//! every handler that takes `Tenant` is thereby scoped to it.

use super::AppState;
use super::error::ApiError;
use crate::store::tenants::{self, Tenant};
use axum::extract::FromRequestParts;
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
        tenants::by_api_key(&state.pool, key)
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown API key"))
    }
}
