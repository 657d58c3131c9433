//! How runs start: the `triggerType` every run records, and (later in this
//! file's siblings) the parsed `trigger` of a definition. Pure.

/// How a run started; stored and filtered on as its `as_str` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerType {
    Api,
    Schedule,
    Webhook,
    Replay,
    Batch,
}

impl TriggerType {
    pub const ALL: [&'static str; 5] = ["api", "schedule", "webhook", "replay", "batch"];

    pub fn parse(s: &str) -> Option<TriggerType> {
        Some(match s {
            "api" => TriggerType::Api,
            "schedule" => TriggerType::Schedule,
            "webhook" => TriggerType::Webhook,
            "replay" => TriggerType::Replay,
            "batch" => TriggerType::Batch,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::Api => "api",
            TriggerType::Schedule => "schedule",
            TriggerType::Webhook => "webhook",
            TriggerType::Replay => "replay",
            TriggerType::Batch => "batch",
        }
    }
}
