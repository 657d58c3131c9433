//! What an API key may do. A scope is a string only on the wire, in the
//! store and on the command line; inside, it is this enum, so a check
//! cannot name a scope that does not exist.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    WorkflowsRead,
    WorkflowsWrite,
    WorkflowsExecute,
    RunsRead,
    RunsWrite,
    ConnectionsRead,
    ConnectionsWrite,
    /// Every other scope, and the admin-only routes (`/metrics` beyond loopback).
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::WorkflowsRead,
        Scope::WorkflowsWrite,
        Scope::WorkflowsExecute,
        Scope::RunsRead,
        Scope::RunsWrite,
        Scope::ConnectionsRead,
        Scope::ConnectionsWrite,
        Scope::Admin,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::WorkflowsRead => "workflows:read",
            Scope::WorkflowsWrite => "workflows:write",
            Scope::WorkflowsExecute => "workflows:execute",
            Scope::RunsRead => "runs:read",
            Scope::RunsWrite => "runs:write",
            Scope::ConnectionsRead => "connections:read",
            Scope::ConnectionsWrite => "connections:write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Every scope's name, for messages and "did you mean".
    pub fn names() -> Vec<&'static str> {
        Scope::ALL.iter().map(|s| s.as_str()).collect()
    }

    /// The scopes named in a stored key; a name this version does not know
    /// (written by a newer one) grants nothing.
    pub fn parse_all(names: &[String]) -> Vec<Scope> {
        names.iter().filter_map(|n| Scope::parse(n)).collect()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Scope;

    #[test]
    fn every_scope_round_trips_through_its_name() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("runs:delete"), None);
        assert_eq!(
            Scope::parse_all(&["admin".into(), "future:scope".into()]),
            vec![Scope::Admin]
        );
    }
}
