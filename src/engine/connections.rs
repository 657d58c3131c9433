//! connection resolution, pure: which stored connection a step uses,
//! and the trigger-time check that refuses a run that cannot succeed.

use crate::store::ConnectionProvider;
use crate::workflow::{CompiledWorkflow, StepKind};

/// What resolution needs to know of a stored connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionRef<'a> {
    pub id: &'a str,
    pub provider: ConnectionProvider,
    pub active: bool,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResolveError {
    /// No active connection resolves for a provider a step needs.
    Required {
        provider: ConnectionProvider,
        step_id: String,
    },
    /// A named connection does not exist or is inactive.
    Invalid(String),
}

/// The run's `connectionId` if it is for `provider`; else the step's own
/// `connection`; else the provider's default; else its only active one.
pub fn resolve<'a>(
    provider: ConnectionProvider,
    run_connection: Option<&str>,
    step_connection: Option<&str>,
    all: &[ConnectionRef<'a>],
) -> Result<Option<&'a str>, ResolveError> {
    let find = |id: &str| all.iter().find(|c| c.id == id);
    if let Some(id) = run_connection
        && let Some(c) = find(id)
        && c.provider == provider
        && c.active
    {
        return Ok(Some(c.id));
    }
    if let Some(id) = step_connection {
        return match find(id) {
            Some(c) if c.active && c.provider == provider => Ok(Some(c.id)),
            Some(c) if c.provider != provider => Err(ResolveError::Invalid(format!(
                "connection '{id}' is for {}, not {provider}",
                c.provider
            ))),
            _ => Err(ResolveError::Invalid(format!(
                "connection '{id}' does not exist or is inactive"
            ))),
        };
    }
    let active: Vec<_> = all
        .iter()
        .filter(|c| c.provider == provider && c.active)
        .collect();
    if let Some(c) = active.iter().find(|c| c.is_default) {
        return Ok(Some(c.id));
    }
    Ok(match active.as_slice() {
        [only] => Some(only.id),
        _ => None,
    })
}

/// Refuse a trigger whose run could not get the connections it needs.
pub fn check_trigger(
    wf: &CompiledWorkflow,
    run_connection: Option<&str>,
    all: &[ConnectionRef],
) -> Result<(), ResolveError> {
    if let Some(id) = run_connection
        && !all.iter().any(|c| c.id == id && c.active)
    {
        return Err(ResolveError::Invalid(format!(
            "Connection '{id}' does not exist or is inactive"
        )));
    }
    for step in &wf.steps {
        let StepKind::Action(kind) = step.kind else {
            continue;
        };
        let resolved = resolve(
            kind.provider(),
            run_connection,
            step.connection.as_deref(),
            all,
        )
        .map_err(|e| match e {
            ResolveError::Invalid(m) => ResolveError::Invalid(format!("step '{}': {m}", step.id)),
            other => other,
        })?;
        if resolved.is_none() && kind.requires_connection() {
            return Err(ResolveError::Required {
                provider: kind.provider(),
                step_id: step.id.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c<'a>(id: &'a str, provider: &str, active: bool, is_default: bool) -> ConnectionRef<'a> {
        ConnectionRef {
            id,
            provider: ConnectionProvider::parse(provider).expect("a provider"),
            active,
            is_default,
        }
    }

    #[test]
    fn resolution_order() {
        let all = [
            c("conn_a", "stripe", true, false),
            c("conn_b", "stripe", true, true),
            c("conn_s", "smtp", true, false),
            c("conn_off", "stripe", false, false),
        ];
        // Run's connection when it is for the provider.
        assert_eq!(
            resolve(ConnectionProvider::Stripe, Some("conn_a"), None, &all),
            Ok(Some("conn_a"))
        );
        // Run's connection for another provider does not apply; default wins.
        assert_eq!(
            resolve(ConnectionProvider::Stripe, Some("conn_s"), None, &all),
            Ok(Some("conn_b"))
        );
        assert_eq!(
            resolve(ConnectionProvider::Smtp, Some("conn_a"), None, &all),
            Ok(Some("conn_s"))
        );
        // The step's own connection beats the default.
        assert_eq!(
            resolve(ConnectionProvider::Stripe, None, Some("conn_a"), &all),
            Ok(Some("conn_a"))
        );
        assert!(matches!(
            resolve(ConnectionProvider::Stripe, None, Some("conn_off"), &all),
            Err(ResolveError::Invalid(_))
        ));
        // The only active one.
        assert_eq!(
            resolve(ConnectionProvider::Smtp, None, None, &all),
            Ok(Some("conn_s"))
        );
        // Two active, no default: nothing resolves.
        let two = [c("x", "stripe", true, false), c("y", "stripe", true, false)];
        assert_eq!(
            resolve(ConnectionProvider::Stripe, None, None, &two),
            Ok(None)
        );
        assert_eq!(
            resolve(ConnectionProvider::Http, None, None, &all),
            Ok(None)
        );
    }
}
