//! Exit codes are part of the contract (docs/cli.md).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: completed / ok
    Ok,
    /// 1: the run failed, was cancelled or timed out
    RunFailed,
    /// 2: usage error or request rejected (4xx)
    Usage,
    /// 3: server unreachable or 5xx
    Server,
    /// 124: `--timeout` elapsed while waiting
    Timeout,
    /// 130: Ctrl-C stopped the waiting (the run goes on)
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::RunFailed => 1,
            Exit::Usage => 2,
            Exit::Server => 3,
            Exit::Timeout => 124,
            Exit::Interrupted => 130,
        }
    }
}
