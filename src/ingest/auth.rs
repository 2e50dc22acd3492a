//! Which sensor a presented token may write.
//!
//! The answer is only a *hint* used to pick the parser and validation rules: the
//! authoritative check happens again inside the group commit's transaction (the batcher
//! compares the token's hash with the stored one, in constant time, with the sensor row
//! locked). That makes it safe to remember token → sensor in memory: a rotated token that
//! is still remembered here is refused at commit, and the entry is then forgotten. Unknown
//! tokens are never remembered, so a freshly created sensor works at once, on every replica.

use std::collections::HashMap;
use std::sync::RwLock;

use deadpool_postgres::Pool;

use crate::domain::Token;
use crate::sensors::{self, SensorAuth};

/// Entries kept at most; past it the map is cleared (cheap, and it refills on demand).
const CACHE_LIMIT: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing token: send `Authorization: Bearer <token>` (or `Token <token>`)")]
    Missing,
    #[error("unknown or revoked token")]
    Unknown,
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// An authenticated request's sensor and the hash of the token it presented.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    pub sensor: SensorAuth,
    pub token_hash: [u8; 32],
}

#[derive(Default)]
pub struct TokenCache {
    map: RwLock<HashMap<[u8; 32], SensorAuth>>,
}

impl TokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves a presented token to its sensor (from memory, else the database).
    pub async fn authenticate(
        &self,
        pool: &Pool,
        presented: &str,
    ) -> Result<Authenticated, AuthError> {
        // Garbage never reaches the database.
        if !Token::is_well_formed(presented) {
            return Err(AuthError::Unknown);
        }
        let token_hash = Token::hash(presented);
        if let Some(sensor) = self.get(&token_hash) {
            return Ok(Authenticated { sensor, token_hash });
        }
        let client = pool
            .get()
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let found = sensors::authenticate(&**client, presented)
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let sensor = found.ok_or(AuthError::Unknown)?;
        if let Ok(mut map) = self.map.write() {
            if map.len() >= CACHE_LIMIT {
                map.clear();
            }
            map.insert(token_hash, sensor);
        }
        Ok(Authenticated { sensor, token_hash })
    }

    /// Forgets a token the database refused at commit time.
    pub fn forget(&self, token_hash: &[u8; 32]) {
        if let Ok(mut map) = self.map.write() {
            map.remove(token_hash);
        }
    }

    fn get(&self, token_hash: &[u8; 32]) -> Option<SensorAuth> {
        self.map.read().ok()?.get(token_hash).copied()
    }
}
