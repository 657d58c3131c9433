//! Run and step statuses and their wire names (also their SQL names).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Pending,
    Running,
    /// Waiting for a person (approval) or an outside system (callback):
    /// parked without a worker until a decision, a callback or its deadline.
    Suspended,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
}

impl RunStatus {
    pub const ALL: [&'static str; 7] = [
        "pending",
        "running",
        "suspended",
        "completed",
        "failed",
        "cancelled",
        "timed_out",
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Suspended => "suspended",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::TimedOut => "timed_out",
        }
    }

    /// The one list of finished statuses (the CLI, the dashboard, the tests
    /// and the stores' SQL all derive from it).
    pub const TERMINAL: [RunStatus; 4] = [
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
        RunStatus::TimedOut,
    ];
    /// The wire names of `TERMINAL`, in its order.
    pub const TERMINAL_NAMES: [&'static str; 4] = {
        let mut names = [""; 4];
        let mut i = 0;
        while i < names.len() {
            names[i] = Self::TERMINAL[i].as_str();
            i += 1;
        }
        names
    };
    /// Queued, parked, suspended or executing.
    pub const UNFINISHED: [RunStatus; 3] =
        [RunStatus::Pending, RunStatus::Running, RunStatus::Suspended];

    pub fn is_terminal(self) -> bool {
        Self::TERMINAL.contains(&self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Running,
    Retrying,
    Waiting,
    Completed,
    Failed,
    Skipped,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Retrying => "retrying",
            StepStatus::Waiting => "waiting",
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<StepStatus> {
        Some(match s {
            "pending" => StepStatus::Pending,
            "running" => StepStatus::Running,
            "retrying" => StepStatus::Retrying,
            "waiting" => StepStatus::Waiting,
            "completed" => StepStatus::Completed,
            "failed" => StepStatus::Failed,
            "skipped" => StepStatus::Skipped,
            _ => return None,
        })
    }

    /// Settled steps are never executed again.
    pub const SETTLED: [StepStatus; 3] = [
        StepStatus::Completed,
        StepStatus::Failed,
        StepStatus::Skipped,
    ];

    pub fn is_settled(self) -> bool {
        Self::SETTLED.contains(&self)
    }
}

impl RunStatus {
    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "pending" => RunStatus::Pending,
            "running" => RunStatus::Running,
            "suspended" => RunStatus::Suspended,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            "timed_out" => RunStatus::TimedOut,
            _ => return None,
        })
    }
}

impl RunStatus {
    /// A step with no record yet: still to come, or never to run once the
    /// run is over (a run cancelled while queued or parked ends in the store
    /// without the engine visiting its later steps).
    pub fn unrecorded_step(self) -> StepStatus {
        if self.is_terminal() {
            StepStatus::Skipped
        } else {
            StepStatus::Pending
        }
    }
}
