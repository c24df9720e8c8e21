//! Registered hooks on PostgreSQL ([`HookStore`]): plain statements on pooled connections, each
//! committed on its own (a hook is written once, outside the request path). Every replica reads
//! the same table, so a hook made on one is served by all (each replica's cache of hooks is
//! short-lived: `crate::receive::hooks`).

use async_trait::async_trait;
use futures_util::FutureExt as _;
use secrecy::{ExposeSecret as _, SecretString};
use tokio_postgres::{GenericClient, Row};

use super::PostgresStore;
use super::read::unavailable;
use crate::store::bulk::Imported;
use crate::store::error::StoreError;
use crate::store::hooks::{HookRow, HookStore, hook_select};

fn hook_from_row(r: &Row) -> Result<HookRow, tokio_postgres::Error> {
    Ok(HookRow {
        id: r.try_get(0)?,
        label: r.try_get(1)?,
        kind: r.try_get(2)?,
        payload: r.try_get(3)?,
        verify: r.try_get::<_, Option<String>>(4)?.map(SecretString::from),
        expires_at: r.try_get(5)?,
        created_at: r.try_get(6)?,
        deleted_at: r.try_get(7)?,
    })
}

/// Inserts `h` unless its id is stored; a copied deletion deletes a stored hook. Rows written.
async fn insert(c: &impl GenericClient, h: &HookRow) -> Result<u64, tokio_postgres::Error> {
    let verify = h.verify.as_ref().map(|v| v.expose_secret().to_string());
    c.execute(
        "INSERT INTO hooks (id, label, kind, payload, verify, expires_at, created_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at, verify = NULL
           WHERE hooks.deleted_at IS NULL AND excluded.deleted_at IS NOT NULL",
        &[
            &h.id,
            &h.label,
            &h.kind,
            &h.payload,
            &verify,
            &h.expires_at,
            &h.created_at,
            &h.deleted_at,
        ],
    )
    .await
}

#[async_trait]
impl HookStore for PostgresStore {
    async fn create_hook(&self, hook: HookRow) -> Result<(), StoreError> {
        self.with_client(|c| {
            async move { insert(c, &hook).await.map(|_| ()).map_err(unavailable) }.boxed()
        })
        .await
    }

    async fn hook(&self, id: &str) -> Result<Option<HookRow>, StoreError> {
        let id = id.to_string();
        self.with_client(|c| {
            async move {
                c.query_opt(hook_select!("FROM hooks WHERE id = $1"), &[&id])
                    .await
                    .map_err(unavailable)?
                    .as_ref()
                    .map(hook_from_row)
                    .transpose()
                    .map_err(unavailable)
            }
            .boxed()
        })
        .await
    }

    async fn list_hooks(
        &self,
        after: Option<String>,
        limit: u32,
        deleted: bool,
    ) -> Result<Vec<HookRow>, StoreError> {
        let after = after.unwrap_or_default();
        let limit = i64::from(limit);
        self.with_client(|c| {
            async move {
                c.query(
                    hook_select!(
                         "FROM hooks WHERE id > $1 AND ($2 OR deleted_at IS NULL) ORDER BY id LIMIT $3"
                     ),
                    &[&after, &deleted, &limit],
                )
                .await
                .map_err(unavailable)?
                .iter()
                .map(hook_from_row)
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)
            }
            .boxed()
        })
        .await
    }

    async fn delete_hook(&self, id: &str, at: String) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with_client(|c| {
            async move {
                c.execute(
                    "UPDATE hooks SET deleted_at = $2, verify = NULL
                     WHERE id = $1 AND deleted_at IS NULL",
                    &[&id, &at],
                )
                .await
                .map(|n| n > 0)
                .map_err(unavailable)
            }
            .boxed()
        })
        .await
    }

    async fn import_hooks(&self, rows: Vec<HookRow>) -> Result<Imported, StoreError> {
        let total = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        let mut client = self.client().await?;
        let work = async {
            let tx = client.transaction().await?;
            let mut copied = 0;
            for h in &rows {
                copied += insert(&*tx, h).await?;
            }
            tx.commit().await?;
            Ok::<_, tokio_postgres::Error>(copied)
        };
        let copied = work.await.map_err(unavailable)?;
        Ok(Imported {
            copied,
            skipped: total.saturating_sub(copied),
        })
    }
}
