//! Registered hooks on SQLite ([`HookStore`]): reads on the read pool, writes as work in the
//! writer's next group commit (as the outbox's), answered once committed.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use secrecy::{ExposeSecret as _, SecretString};

use super::SqliteStore;
use super::read::unavailable;
use super::writer::TxDone;
use crate::store::bulk::Imported;
use crate::store::error::StoreError;
use crate::store::hooks::{HookRow, HookStore, hook_select};

fn hook_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HookRow> {
    Ok(HookRow {
        id: r.get(0)?,
        label: r.get(1)?,
        kind: r.get(2)?,
        payload: r.get(3)?,
        verify: r.get::<_, Option<String>>(4)?.map(SecretString::from),
        expires_at: r.get(5)?,
        created_at: r.get(6)?,
        deleted_at: r.get(7)?,
    })
}

/// Inserts `h` unless its id is stored; a copied deletion deletes a stored hook. Rows written.
fn insert(c: &Connection, h: &HookRow) -> rusqlite::Result<usize> {
    let verify = h.verify.as_ref().map(|v| v.expose_secret().to_string());
    c.prepare_cached(
        "INSERT INTO hooks (id, label, kind, payload, verify, expires_at, created_at, deleted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at, verify = NULL
           WHERE hooks.deleted_at IS NULL AND excluded.deleted_at IS NOT NULL",
    )?
    .execute(params![
        h.id,
        h.label,
        h.kind,
        h.payload,
        verify,
        h.expires_at,
        h.created_at,
        h.deleted_at
    ])
}

fn list(
    c: &Connection,
    after: Option<&str>,
    limit: u32,
    deleted: bool,
) -> rusqlite::Result<Vec<HookRow>> {
    c.prepare_cached(hook_select!(
        "FROM hooks WHERE id > ?1 AND (?2 OR deleted_at IS NULL) ORDER BY id LIMIT ?3"
    ))?
    .query_map(
        params![after.unwrap_or(""), deleted, i64::from(limit)],
        hook_from_row,
    )?
    .collect()
}

#[async_trait]
impl HookStore for SqliteStore {
    async fn create_hook(&self, hook: HookRow) -> Result<(), StoreError> {
        self.tx(Box::new(move |tx| {
            insert(tx, &hook)?;
            Ok(TxDone::default())
        }))
        .await
        .map(|_| ())
    }

    async fn hook(&self, id: &str) -> Result<Option<HookRow>, StoreError> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(hook_select!("FROM hooks WHERE id = ?1"))
                .and_then(|mut s| s.query_row([&id], hook_from_row).optional())
                .map_err(unavailable)
        })
        .await
    }

    async fn list_hooks(
        &self,
        after: Option<String>,
        limit: u32,
        deleted: bool,
    ) -> Result<Vec<HookRow>, StoreError> {
        self.read(move |c| list(c, after.as_deref(), limit, deleted).map_err(unavailable))
            .await
    }

    async fn delete_hook(&self, id: &str, at: String) -> Result<bool, StoreError> {
        let id = id.to_string();
        let done = self
            .tx(Box::new(move |tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE hooks SET deleted_at = ?2, verify = NULL
                         WHERE id = ?1 AND deleted_at IS NULL",
                    )?
                    .execute(params![id, at])?;
                Ok(TxDone {
                    value: i64::try_from(n).unwrap_or(0),
                    ..TxDone::default()
                })
            }))
            .await?;
        Ok(done.value > 0)
    }

    async fn import_hooks(&self, rows: Vec<HookRow>) -> Result<Imported, StoreError> {
        let total = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        let done = self
            .tx(Box::new(move |tx| {
                let mut copied = 0;
                for h in &rows {
                    copied += i64::try_from(insert(tx, h)?).unwrap_or(0);
                }
                Ok(TxDone {
                    value: copied,
                    ..TxDone::default()
                })
            }))
            .await?;
        let copied = u64::try_from(done.value).unwrap_or(0);
        Ok(Imported {
            copied,
            skipped: total.saturating_sub(copied),
        })
    }
}
