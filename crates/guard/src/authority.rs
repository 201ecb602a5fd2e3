//! Authority tokens: a JWT signed with EdDSA or ES256 by a key the pact lists, bound to this
//! agent (`aud`), short-lived, and checked against the `now` passed in (never the system clock).
//! A role written in arguments or content is never authority; only a token that verifies here is.

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, Validation};
use pact::{AuthorityRequirement, Pact};
use serde_json::Value;

/// Longest token accepted, in bytes.
pub const TOKEN_BYTES_MAX: usize = 8 * 1024;

/// What a verified token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAuthority {
    /// The token's `sub`.
    pub subject: String,
    /// The `roles` claim (or a single `role`).
    pub roles: Vec<String>,
    /// Every string-valued claim, for `require_authority.claims`.
    pub claims: BTreeMap<String, String>,
    /// `exp`, in unix milliseconds.
    pub expires_ms: u64,
    /// `nbf` (or `iat`), in unix milliseconds.
    pub not_before_ms: u64,
    /// The key that signed it.
    pub key_id: String,
}

impl VerifiedAuthority {
    /// Whether this authority satisfies a rule's requirement.
    pub fn meets(&self, requirement: &AuthorityRequirement) -> bool {
        let role_ok = requirement
            .role
            .as_ref()
            .is_none_or(|role| self.roles.iter().any(|candidate| candidate == role));
        let claims_ok = requirement
            .claims
            .iter()
            .all(|(claim, value)| self.claims.get(claim) == Some(value));
        role_ok && claims_ok
    }

    /// Whether the token is valid at `now_ms`.
    pub fn valid_at(&self, now_ms: u64) -> bool {
        now_ms < self.expires_ms && now_ms >= self.not_before_ms
    }
}

/// Verifies a token's signature and claims. Time comes from `now_ms`.
pub(crate) fn verify(pact: &Pact, token: &str, now_ms: u64) -> Result<VerifiedAuthority, String> {
    if token.len() > TOKEN_BYTES_MAX {
        return Err(format!(
            "token is {} bytes; the limit is {TOKEN_BYTES_MAX}",
            token.len()
        ));
    }
    if pact.authority_keys().is_empty() {
        return Err("the pact lists no authority keys".to_string());
    }
    let header =
        jsonwebtoken::decode_header(token).map_err(|err| format!("malformed token: {err}"))?;
    if header.alg != Algorithm::EdDSA && header.alg != Algorithm::ES256 {
        return Err(format!(
            "algorithm {:?} is not accepted; use EdDSA or ES256",
            header.alg
        ));
    }
    let candidates: Vec<&pact::AuthorityKey> = pact
        .authority_keys()
        .iter()
        .filter(|key| key.algorithm == header.alg)
        .filter(|key| header.kid.as_ref().is_none_or(|kid| kid == &key.id))
        .collect();
    if candidates.is_empty() {
        return Err(match &header.kid {
            Some(kid) => format!(
                "no {:?} key with id `{kid}` is configured for this agent",
                header.alg
            ),
            None => format!("no {:?} key is configured for this agent", header.alg),
        });
    }
    let mut validation = Validation::new(header.alg);
    // Time and audience are checked below against `now_ms` and the pact, not the system clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut last_error = String::new();
    for key in candidates {
        match jsonwebtoken::decode::<Value>(token, &key.key, &validation) {
            Ok(data) => return check_claims(pact, key, &data.claims, now_ms),
            Err(err) => last_error = err.to_string(),
        }
    }
    Err(format!("signature does not verify: {last_error}"))
}

fn seconds_to_ms(value: Option<&Value>, claim: &str) -> Result<Option<u64>, String> {
    match value {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|seconds| seconds.checked_mul(1000))
            .map(Some)
            .ok_or_else(|| format!("claim `{claim}` must be a whole number of seconds")),
    }
}

fn check_claims(
    pact: &Pact,
    key: &pact::AuthorityKey,
    claims: &Value,
    now_ms: u64,
) -> Result<VerifiedAuthority, String> {
    let Some(claims) = claims.as_object() else {
        return Err("claims are not a JSON object".to_string());
    };
    let expires_ms = seconds_to_ms(claims.get("exp"), "exp")?
        .ok_or("token has no `exp`; authority tokens must expire")?;
    let issued_ms = seconds_to_ms(claims.get("iat"), "iat")?;
    let not_before_ms = seconds_to_ms(claims.get("nbf"), "nbf")?
        .or(issued_ms)
        .unwrap_or(0);
    if now_ms >= expires_ms {
        return Err(format!(
            "token expired {} s ago",
            (now_ms - expires_ms) / 1000
        ));
    }
    if now_ms < not_before_ms {
        return Err("token is not valid yet".to_string());
    }
    let lifetime_ms = expires_ms.saturating_sub(issued_ms.unwrap_or(now_ms));
    if lifetime_ms > pact.token_lifetime_ms_max() {
        return Err(format!(
            "token lives {} s; the pact accepts at most {} s",
            lifetime_ms / 1000,
            pact.token_lifetime_ms_max() / 1000
        ));
    }
    let bound = match claims.get("aud") {
        Some(Value::String(audience)) => audience == pact.agent(),
        Some(Value::Array(audiences)) => audiences
            .iter()
            .any(|audience| audience.as_str() == Some(pact.agent())),
        _ => false,
    };
    if !bound {
        return Err(format!(
            "token is not bound to agent `{}` (claim `aud`)",
            pact.agent()
        ));
    }
    if let Some(issuer) = &key.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(format!("token issuer is not `{issuer}`"));
        }
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or("token has no `sub`")?
        .to_string();
    let mut roles: Vec<String> = match claims.get("roles") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    if let Some(role) = claims.get("role").and_then(Value::as_str) {
        roles.push(role.to_string());
    }
    roles.sort();
    roles.dedup();
    let string_claims = claims
        .iter()
        .filter_map(|(name, value)| value.as_str().map(|text| (name.clone(), text.to_string())))
        .collect();
    Ok(VerifiedAuthority {
        subject,
        roles,
        claims: string_claims,
        expires_ms,
        not_before_ms,
        key_id: key.id.clone(),
    })
}
