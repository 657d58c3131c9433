//! Rate limits shared by every node: one GCRA bucket per API key and
//! category in the unlogged `rate_tat` table, one statement per request, on
//! the database clock. A denied request changes nothing and reads the
//! bucket as it was, for `Retry-After`.

use super::{PgStore, pg};
use crate::store::{RateState, Result};

impl PgStore {
    /// `Cluster::rate_hit` on the shared bucket table.
    pub(super) async fn gcra_hit(
        &self,
        key: String,
        category: &'static str,
        emission_ms: i64,
        burst_ms: i64,
    ) -> Result<Option<RateState>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "WITH now AS (SELECT flowctl_now_ms() AS ms), \
                 hit AS (INSERT INTO rate_tat (key_id, category, tat_ms) SELECT $1, $2, now.ms + $3 FROM now \
                   ON CONFLICT (key_id, category) DO UPDATE \
                   SET tat_ms = GREATEST(rate_tat.tat_ms, flowctl_now_ms()) + $3 \
                   WHERE GREATEST(rate_tat.tat_ms, flowctl_now_ms()) + $3 - flowctl_now_ms() <= $4 \
                   RETURNING tat_ms) \
                 SELECT (SELECT tat_ms FROM hit), \
                   (SELECT tat_ms FROM rate_tat WHERE key_id = $1 AND category = $2), now.ms FROM now",
            )
            .await
            .map_err(pg)?;
        let row = c
            .query_one(&stmt, &[&key, &category, &emission_ms, &burst_ms])
            .await
            .map_err(pg)?;
        let (after, before, now): (Option<i64>, Option<i64>, i64) =
            (row.get(0), row.get(1), row.get(2));
        Ok(Some(match after {
            Some(tat_ms) => RateState {
                allowed: true,
                tat_ms,
                now_ms: now,
            },
            None => RateState {
                allowed: false,
                tat_ms: before.unwrap_or(now),
                now_ms: now,
            },
        }))
    }
}
