//! Wake-ups between nodes over LISTEN/NOTIFY, which is only ever a latency
//! hint: every node still polls once a second. Outgoing notes are sent from
//! the application after commit (never from a trigger), coalesced over a
//! few milliseconds into one `pg_notify` per kind, so a busy node does not
//! serialise its commits on NOTIFY's global lock. Incoming notes arrive on
//! one dedicated connection per node; a start-up self-test falls back to
//! polling alone when notifications do not come back (a transaction-mode
//! pooler drops them).

use super::tls::Tls;
use crate::events::Events;
use deadpool_postgres::Pool;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_postgres::AsyncMessage;

const CHANNEL: &str = "flowctl";
/// Notes waiting at once are sent together after this.
const COALESCE: Duration = Duration::from_millis(10);
/// NOTIFY payloads must stay under 8000 bytes.
const IDS_PER_NOTE: usize = 150;
const SELF_TEST_TIMEOUT: Duration = Duration::from_secs(3);

pub enum Note {
    /// A run became due (created, released, parked, requeued).
    Queued,
    /// A run ended: answers long-polls on other nodes.
    Finished(String),
    /// A cancel was recorded: the node executing the run aborts its step.
    Cancel(String),
    /// A workflow was applied, paused or archived (schedules are re-read).
    Workflows,
}

pub struct Notifier {
    tx: mpsc::UnboundedSender<Note>,
    stop: watch::Sender<bool>,
}

impl Notifier {
    pub fn start(pool: Pool) -> Notifier {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(send_loop(pool, rx, stopped));
        Notifier { tx, stop }
    }

    pub fn send(&self, note: Note) {
        let _ = self.tx.send(note);
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

async fn send_loop(pool: Pool, mut rx: mpsc::UnboundedReceiver<Note>, stop: watch::Receiver<bool>) {
    while let Some(first) = rx.recv().await {
        if *stop.borrow() {
            return;
        }
        tokio::time::sleep(COALESCE).await;
        let mut notes = vec![first];
        while let Ok(n) = rx.try_recv() {
            notes.push(n);
        }
        let payloads = payloads(notes);
        let Ok(client) = pool.get().await else {
            continue;
        };
        for p in payloads {
            if let Err(e) = client
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &p])
                .await
            {
                tracing::debug!(error = %e, "cannot send a notification; nodes poll instead");
            }
        }
    }
}

fn payloads(notes: Vec<Note>) -> Vec<String> {
    let mut queued = false;
    let mut workflows = false;
    let mut finished = vec![];
    let mut cancels = vec![];
    for n in notes {
        match n {
            Note::Queued => queued = true,
            Note::Workflows => workflows = true,
            Note::Finished(id) => finished.push(id),
            Note::Cancel(id) => cancels.push(id),
        }
    }
    let mut out = vec![];
    if queued {
        out.push("q".to_string());
    }
    if workflows {
        out.push("w".to_string());
    }
    for chunk in cancels.chunks(IDS_PER_NOTE) {
        out.push(format!("c:{}", chunk.join(",")));
    }
    for chunk in finished.chunks(IDS_PER_NOTE) {
        out.push(format!("f:{}", chunk.join(",")));
    }
    out
}

fn dispatch(events: &Events, payload: &str) {
    match payload.split_once(':') {
        None if payload == "q" => events.run_queued(),
        None if payload == "w" => events.workflows_changed(),
        Some(("f", ids)) => ids.split(',').for_each(|id| events.run_finished(id)),
        Some(("c", ids)) => ids.split(',').for_each(|id| events.cancel_if_running(id)),
        _ => {}
    }
}

/// Listen until the store closes, reconnecting after a lost connection.
pub async fn listen(
    config: tokio_postgres::Config,
    tls: Tls,
    pool: Pool,
    events: Events,
    mut stop: watch::Receiver<bool>,
) {
    let mut first = true;
    loop {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let connected = match config.connect(tls.clone()).await {
            Ok((client, mut conn)) => {
                let forward = tokio::spawn(async move {
                    while let Some(msg) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                        match msg {
                            Ok(AsyncMessage::Notification(n)) => {
                                let _ = tx.send(n.payload().to_string());
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => Some((client, forward)),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot LISTEN for wake-ups; polling");
                        forward.abort();
                        None
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the notification connection; polling");
                None
            }
        };
        if let Some((_client, forward)) = connected {
            if first {
                first = false;
                if !self_test(&pool, &mut rx).await {
                    tracing::warn!(
                        "notifications sent do not come back (a transaction-mode pooler?); \
                         this node polls once a second instead"
                    );
                    forward.abort();
                    return;
                }
            } else {
                // Anything may have happened while the connection was down.
                events.run_queued();
            }
            loop {
                tokio::select! {
                    p = rx.recv() => match p {
                        Some(p) => dispatch(&events, &p),
                        None => break,
                    },
                    _ = stop.changed() => {
                        forward.abort();
                        return;
                    }
                }
            }
            tracing::warn!("the notification connection was lost; reconnecting");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// NOTIFY ourselves through the pool and wait for it on the listener.
async fn self_test(pool: &Pool, rx: &mut mpsc::UnboundedReceiver<String>) -> bool {
    let nonce = format!("t:{}", crate::ids::run_id());
    let Ok(client) = pool.get().await else {
        return false;
    };
    if client
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &nonce])
        .await
        .is_err()
    {
        return false;
    }
    let wait = async {
        while let Some(p) = rx.recv().await {
            if p == nonce {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(SELF_TEST_TIMEOUT, wait)
        .await
        .unwrap_or(false)
}
