//! What the worker adds to a commit that suspends a run: a new approval's
//! tokens (random, so not the engine's business), each stored only as its
//! hash, with a sealed copy for the mailer when the approver gets a mail.

use super::Worker;
use crate::engine::Suspend;
use crate::store::{NewApproval, NewApprovalToken, SuspendWrite};

impl Worker {
    pub(super) fn suspension_for(&self, sp: &Suspend, workflow_id: &str) -> SuspendWrite {
        let approval = sp.approval.as_ref().map(|a| NewApproval {
            workflow_id: workflow_id.to_string(),
            reason: a.reason.clone(),
            approvers: a.approvers.clone(),
            required: a.required as i64,
            expires_at: a.expires_at,
            tokens: a
                .approvers
                .iter()
                .map(|approver| {
                    let (token, token_hash) = crate::waits::new_approval_token();
                    let mailed = a.email && crate::waits::is_email(approver);
                    NewApprovalToken {
                        approver: approver.clone(),
                        token_hash,
                        sealed: mailed.then(|| self.secrets.encrypt(&token)),
                    }
                })
                .collect(),
        });
        SuspendWrite {
            step_id: sp.step_id.clone(),
            waiting_for: sp.waiting_for,
            approval,
        }
    }
}
