//! The catalogue of actions: parsing a step's `type`/`action` into an [`ActionKind`], and the
//! static facts the validator and the connection resolver need (provider, required config).
//! Pure: depends on nothing but serde_json.

use crate::store::ConnectionProvider;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    HttpRequest,
    StripeCreateCustomer,
    StripeCreateInvoice,
    StripeFinalizeInvoice,
    StripeRetrieveCustomer,
    Email,
}

const ALL: [ActionKind; 6] = [
    ActionKind::HttpRequest,
    ActionKind::StripeCreateCustomer,
    ActionKind::StripeCreateInvoice,
    ActionKind::StripeFinalizeInvoice,
    ActionKind::StripeRetrieveCustomer,
    ActionKind::Email,
];

impl ActionKind {
    /// Step `type` (`"action"` | `"email"`) and its `action` field → kind; `None` = unknown.
    ///
    /// `email` steps accept no action, `"send"` or `"email.send"` (the seed puts
    /// `"action": "send"` inside `config`; the caller may pass either place).
    /// `type: "action"` also accepts `action: "email.send"`.
    pub fn parse(step_type: &str, action: Option<&str>) -> Option<ActionKind> {
        match (step_type, action) {
            ("email", None | Some("send") | Some("email.send")) => Some(ActionKind::Email),
            ("action", Some(name)) => ALL.into_iter().find(|k| k.as_str() == name),
            _ => None,
        }
    }

    /// The canonical `provider.operation` name, as written in definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::HttpRequest => "http.request",
            ActionKind::StripeCreateCustomer => "stripe.createCustomer",
            ActionKind::StripeCreateInvoice => "stripe.createInvoice",
            ActionKind::StripeFinalizeInvoice => "stripe.finalizeInvoice",
            ActionKind::StripeRetrieveCustomer => "stripe.retrieveCustomer",
            ActionKind::Email => "email.send",
        }
    }

    /// The connection provider this action uses.
    pub fn provider(self) -> ConnectionProvider {
        match self {
            ActionKind::HttpRequest => ConnectionProvider::Http,
            ActionKind::Email => ConnectionProvider::Smtp,
            _ => ConnectionProvider::Stripe,
        }
    }

    /// `http.request` works without a connection (it only adds a base URL and default
    /// headers); Stripe and email cannot.
    pub fn requires_connection(self) -> bool {
        !matches!(self, ActionKind::HttpRequest)
    }

    /// Config fields that must be present (checked at apply time; their rendered value is
    /// checked again when the step runs).
    pub fn required_config(self) -> &'static [&'static str] {
        match self {
            ActionKind::HttpRequest => &["url"],
            ActionKind::StripeCreateCustomer => &[],
            ActionKind::StripeCreateInvoice => &["customerId"],
            ActionKind::StripeFinalizeInvoice => &["invoiceId"],
            ActionKind::StripeRetrieveCustomer => &["customerId"],
            ActionKind::Email => &["to", "subject"],
        }
    }

    /// The required fields absent (or `null`) in an unrendered config, for apply-time
    /// validation (`steps[i].config.<field>: required`).
    pub fn missing_config(self, config: &Value) -> Vec<&'static str> {
        self.required_config()
            .iter()
            .copied()
            .filter(|field| config.get(field).is_none_or(Value::is_null))
            .collect()
    }

    /// Every action name, for "unknown action" messages.
    pub fn known_actions() -> &'static [&'static str] {
        &[
            "http.request",
            "stripe.createCustomer",
            "stripe.createInvoice",
            "stripe.finalizeInvoice",
            "stripe.retrieveCustomer",
            "email.send",
        ]
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_known_action() {
        for name in ActionKind::known_actions() {
            let kind = ActionKind::parse("action", Some(name)).unwrap();
            assert_eq!(kind.as_str(), *name);
        }
        assert_eq!(ActionKind::parse("email", None), Some(ActionKind::Email));
        assert_eq!(
            ActionKind::parse("email", Some("send")),
            Some(ActionKind::Email)
        );
        assert_eq!(ActionKind::parse("email", Some("receive")), None);
        assert_eq!(ActionKind::parse("action", Some("stripe.refund")), None);
        assert_eq!(ActionKind::parse("action", None), None);
        assert_eq!(ActionKind::parse("transform", None), None);
    }

    #[test]
    fn providers_and_requirements() {
        assert_eq!(ActionKind::HttpRequest.provider(), ConnectionProvider::Http);
        assert_eq!(ActionKind::Email.provider(), ConnectionProvider::Smtp);
        assert_eq!(
            ActionKind::StripeCreateInvoice.provider(),
            ConnectionProvider::Stripe
        );
        assert!(!ActionKind::HttpRequest.requires_connection());
        assert!(ActionKind::Email.requires_connection());
        assert_eq!(
            ActionKind::Email.missing_config(&json!({"to": "a@b.c", "subject": null})),
            vec!["subject"]
        );
        assert!(
            ActionKind::StripeCreateCustomer
                .missing_config(&json!({}))
                .is_empty()
        );
    }
}
