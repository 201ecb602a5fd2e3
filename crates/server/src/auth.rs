//! Bearer-token authentication and roles. Tokens are random, shown once and stored as SHA-256
//! hashes; a verified token becomes a [`Caller`] that handlers check against the roles an
//! endpoint allows.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};

use crate::app::AppState;
use crate::problem::ApiError;

/// Longest `Authorization` header value accepted, in bytes.
pub const AUTHORIZATION_BYTES_MAX: usize = 256;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including tokens, agents and pacts.
    Admin,
    /// Halts, restrictions, approvals; reads.
    Operator,
    /// Decide and report outcomes for its one agent; read about itself.
    Agent,
    /// Read-only, plus evidence export.
    Auditor,
}

impl Role {
    /// Every role, for tables and tests.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Agent, Role::Auditor];

    /// The role's name on the wire and in the registry.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Agent => "agent",
            Role::Auditor => "auditor",
        }
    }

    /// Parses a role name.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's id (`tok_...`): who did it, in records.
    pub token_id: String,
    /// The token's label.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// For agent tokens, the agent they are bound to.
    pub agent: Option<String>,
}

impl Caller {
    /// Refuses with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the `{}` role may not do this",
                self.role
            )))
        }
    }

    /// Like [`Caller::require`], where an agent token also passes if it is bound to `agent`.
    pub fn require_for_agent(&self, roles: &[Role], agent: &str) -> Result<(), ApiError> {
        if self.role == Role::Agent {
            if roles.contains(&Role::Agent) && self.agent.as_deref() == Some(agent) {
                return Ok(());
            }
            return Err(ApiError::forbidden(format!(
                "this agent token may only act for its own agent, not `{agent}`"
            )));
        }
        self.require(roles)
    }

    /// How the caller is named in records: `name (tok_...)`.
    pub fn who(&self) -> String {
        format!("{} ({})", self.name, self.token_id)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            unauthenticated("this endpoint needs `Authorization: Bearer <token>`")
        })?;
        if value.len() > AUTHORIZATION_BYTES_MAX {
            return Err(unauthenticated("the Authorization header is too long"));
        }
        let token = value
            .to_str()
            .ok()
            .and_then(|text| text.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthenticated("expected `Authorization: Bearer <token>`"))?;
        let caller = app
            .authenticate(token)?
            .ok_or_else(|| unauthenticated("unknown or revoked token"))?;
        app.check_rate(&caller.token_id)?;
        Ok(caller)
    }
}

fn unauthenticated(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
}
