//! Tenants and their API keys. A key is 256 random bits shown once; only its SHA-256 is
//! stored, so a database leak does not leak working keys.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

/// The tenant an API key belongs to.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
}

/// What `tenant create` prints once.
pub struct NewTenant {
    pub tenant: Tenant,
    pub api_key: String,
    pub signing_secret: String,
}

/// Errors of `tenant create`.
#[derive(Debug, thiserror::Error)]
pub enum CreateTenantError {
    #[error("a tenant named {0:?} already exists")]
    NameTaken(String),
    #[error("a tenant name must be 1 to 200 characters with no control characters")]
    BadName,
    #[error("could not read random bytes: {0}")]
    Random(#[from] getrandom::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn random_token(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let mut out = String::with_capacity(prefix.len() + 64);
    out.push_str(prefix);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    Ok(out)
}

/// The stored form of an API key.
pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Creates a tenant with one API key and a callback signing secret.
pub async fn create(pool: &PgPool, name: &str) -> Result<NewTenant, CreateTenantError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(CreateTenantError::BadName);
    }
    let api_key = random_token("ci_")?;
    let signing_secret = random_token("whsec_")?;
    let id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO tenants (id, name, signing_secret) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(id)
    .bind(name)
    .bind(&signing_secret)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(CreateTenantError::NameTaken(name.to_owned()));
    }
    sqlx::query("INSERT INTO api_keys (key_hash, tenant_id) VALUES ($1, $2)")
        .bind(hash_key(&api_key))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(NewTenant {
        tenant: Tenant {
            id,
            name: name.to_owned(),
        },
        api_key,
        signing_secret,
    })
}

/// The tenant of the API key whose `hash_key` is `hash`, if the key is known.
pub async fn by_key_hash(pool: &PgPool, hash: &[u8]) -> Result<Option<Tenant>, sqlx::Error> {
    let row: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT t.id, t.name FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = $1",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(id, name)| Tenant { id, name }))
}
