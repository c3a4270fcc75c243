//! HMAC-SHA256 signed tokens.
//!
//! A token is `base64url(json payload) "." hex(hmac)`, where the HMAC key is chosen by the
//! payload's `key_id`. The RM signs a [`ContainerToken`] for every allocation (the NM refuses to
//! start a container without a valid one addressed to itself) and an [`AmToken`] per AM attempt
//! (the RM refuses allocate/register/finish calls that do not carry the caller's own token).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{AttemptId, ContainerId, Millis, NodeId, Resource};

type HmacSha256 = Hmac<Sha256>;

/// A secret used to sign tokens, with the id that names it inside tokens.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MasterKey {
    pub key_id: u32,
    /// Hex-encoded key bytes (hex keeps it JSON-friendly when shipped to NMs).
    pub secret_hex: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl MasterKey {
    pub fn generate(key_id: u32) -> Self {
        let bytes: [u8; 32] = rand::random();
        Self { key_id, secret_hex: hex::encode(bytes) }
    }

    fn mac(&self) -> HmacSha256 {
        let secret = hex::decode(&self.secret_hex).unwrap_or_default();
        <HmacSha256 as KeyInit>::new_from_slice(&secret).expect("HMAC accepts keys of any length")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token was signed with unknown key {0}")]
    UnknownKey(u32),
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token expired at {expired_at} (now {now})")]
    Expired { expired_at: Millis, now: Millis },
    #[error("token is for {expected}, not for {actual}")]
    WrongSubject { expected: String, actual: String },
}

/// Payloads carry the id of the key that signed them.
pub trait Signed: Serialize + DeserializeOwned {
    fn key_id(&self) -> u32;
}

pub fn sign<T: Signed>(payload: &T, key: &MasterKey) -> String {
    Signer::new(key).sign(payload)
}

/// Signs many tokens with one key: the keyed HMAC state is set up once (the RM signs a token
/// per allocation, where that set-up would be a fifth of the cost).
#[derive(Clone)]
pub struct Signer {
    key_id: u32,
    mac: HmacSha256,
}

impl Signer {
    pub fn new(key: &MasterKey) -> Self {
        Self { key_id: key.key_id, mac: key.mac() }
    }

    pub fn sign<T: Signed>(&self, payload: &T) -> String {
        debug_assert_eq!(payload.key_id(), self.key_id);
        let json = serde_json::to_vec(payload).expect("payload serializes");
        let mut token = String::with_capacity(json.len().div_ceil(3) * 4 + 1 + 64);
        URL_SAFE_NO_PAD.encode_string(&json, &mut token);
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        let mut signature = [0u8; 64];
        hex::encode_to_slice(mac.finalize().into_bytes(), &mut signature).expect("64 hex digits for 32 bytes");
        token.push('.');
        token.push_str(std::str::from_utf8(&signature).expect("hex is ASCII"));
        token
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// Checks the signature (constant time) against whichever of `keys` the token names.
pub fn verify<T: Signed>(token: &str, keys: &[MasterKey]) -> Result<T, TokenError> {
    let (body, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
    let payload: T = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    let key = keys.iter().find(|k| k.key_id == payload.key_id()).ok_or(TokenError::UnknownKey(payload.key_id()))?;
    let sig = hex::decode(sig).map_err(|_| TokenError::Malformed)?;
    let mut mac = key.mac();
    mac.update(body.as_bytes());
    mac.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    Ok(payload)
}

/// What the NM needs to trust before starting a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerToken {
    pub container_id: ContainerId,
    pub node_id: NodeId,
    pub user: String,
    pub resource: Resource,
    pub expires_at: Millis,
    pub key_id: u32,
    /// RM epoch that issued the token.
    pub rm_epoch: u32,
}

impl Signed for ContainerToken {
    fn key_id(&self) -> u32 {
        self.key_id
    }
}

impl ContainerToken {
    /// Verifies signature, expiry and that the token is addressed to `node`.
    pub fn verify_for_node(token: &str, keys: &[MasterKey], node: &NodeId, now: Millis) -> Result<Self, TokenError> {
        let t: ContainerToken = verify(token, keys)?;
        if &t.node_id != node {
            return Err(TokenError::WrongSubject { expected: node.to_string(), actual: t.node_id.to_string() });
        }
        if now > t.expires_at {
            return Err(TokenError::Expired { expired_at: t.expires_at, now });
        }
        Ok(t)
    }
}

/// Identifies one AM attempt to the RM (YARN's AMRMToken).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmToken {
    pub attempt_id: AttemptId,
    pub key_id: u32,
}

impl Signed for AmToken {
    fn key_id(&self) -> u32 {
        self.key_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApplicationId;

    fn token(node: &str, expires_at: Millis) -> ContainerToken {
        let attempt = AttemptId::new(ApplicationId::new(1, 1), 1);
        ContainerToken {
            container_id: ContainerId { attempt, epoch: 0, seq: 1 },
            node_id: NodeId(node.into()),
            user: "alice".into(),
            resource: Resource::new(1024, 1),
            expires_at,
            key_id: 7,
            rm_epoch: 1,
        }
    }

    #[test]
    fn sign_and_verify() {
        let key = MasterKey::generate(7);
        let t = sign(&token("n1:1", 100), &key);
        let node = NodeId("n1:1".into());
        assert_eq!(ContainerToken::verify_for_node(&t, &[key.clone()], &node, 50).unwrap(), token("n1:1", 100));
        assert!(matches!(
            ContainerToken::verify_for_node(&t, &[key.clone()], &node, 101),
            Err(TokenError::Expired { .. })
        ));
        assert!(matches!(
            ContainerToken::verify_for_node(&t, &[key.clone()], &NodeId("n2:1".into()), 50),
            Err(TokenError::WrongSubject { .. })
        ));
        assert_eq!(verify::<ContainerToken>(&t, &[MasterKey::generate(8)]), Err(TokenError::UnknownKey(7)));
        let forged = sign(&token("n1:1", 100), &MasterKey { key_id: 7, ..MasterKey::generate(7) });
        assert_eq!(verify::<ContainerToken>(&forged, &[key.clone()]), Err(TokenError::BadSignature));
        // Swapping the payload while keeping the signature must fail.
        let (_, sig) = t.split_once('.').unwrap();
        let (other, _) =
            sign(&token("n2:1", 100), &key).split_once('.').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap();
        assert_eq!(verify::<ContainerToken>(&format!("{other}.{sig}"), &[key]), Err(TokenError::BadSignature));
    }
}
