//! Migrations of the PostgreSQL store: SQL files under `migrations/`, applied in order at open,
//! each in its own transaction with its row in `schema_version`, all under an advisory lock so
//! that replicas starting at the same moment do not race (the first applies them, the others
//! wait for the lock and then find nothing to do).

use anyhow::Context as _;
use tokio_postgres::Client;

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_schema.sql",
        include_str!("migrations/0001_schema.sql"),
    ),
    (
        "0002_attrs_with_nul.sql",
        include_str!("migrations/0002_attrs_with_nul.sql"),
    ),
    (
        "0003_lean_indexes.sql",
        include_str!("migrations/0003_lean_indexes.sql"),
    ),
    (
        "0004_delivery.sql",
        include_str!("migrations/0004_delivery.sql"),
    ),
    ("0005_hooks.sql", include_str!("migrations/0005_hooks.sql")),
    (
        "0006_trace_context.sql",
        include_str!("migrations/0006_trace_context.sql"),
    ),
];

/// The first key of the advisory lock held while migrating (the second is the schema's name,
/// hashed, so that stores in different schemas of one database do not wait for each other).
pub const LOCK_CLASS: i32 = 0x686b_6701; // "hkg" 1

/// The schema version this build writes.
pub fn latest() -> i32 {
    i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX)
}

/// Applies every migration the database lacks, under the advisory lock.
///
/// # Errors
/// When the lock, a migration or the version table fails, or the database is newer than this
/// build (it was migrated by a later hookgate).
pub async fn migrate(client: &mut Client) -> anyhow::Result<()> {
    // `statement_timeout` (`store.busy_timeout`) is for requests: waiting for another replica's
    // migration, or a migration building an index on a large table, may take longer. RESET
    // gives the connection back its value from the connection's options.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .context("the migration session could not be prepared")?;
    let outcome = migrate_unlimited(client).await;
    let reset = client.batch_execute("RESET statement_timeout").await;
    outcome?;
    reset.context("statement_timeout could not be reset after migrating")
}

async fn migrate_unlimited(client: &mut Client) -> anyhow::Result<()> {
    client
        .execute(
            "SELECT pg_advisory_lock($1, hashtext(current_schema()))",
            &[&LOCK_CLASS],
        )
        .await
        .context("the migration lock (pg_advisory_lock) could not be taken")?;
    let outcome = migrate_locked(client).await;
    // Released on every path; a connection that died released it already.
    let _ = client
        .execute(
            "SELECT pg_advisory_unlock($1, hashtext(current_schema()))",
            &[&LOCK_CLASS],
        )
        .await;
    outcome
}

async fn migrate_locked(client: &mut Client) -> anyhow::Result<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version    integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .context("the schema_version table could not be created (may the user CREATE tables in the schema?)")?;
    let current: i32 = client
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await
        .context("the schema version could not be read")?
        .try_get(0)
        .context("the schema version could not be read")?;
    if current > latest() {
        anyhow::bail!(
            "the database's schema is version {current}, newer than this build knows ({}); run the hookgate version that migrated it, or a later one",
            latest()
        );
    }
    for (version, (name, sql)) in (1..).zip(MIGRATIONS.iter()) {
        if version <= current {
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("migration {name} failed"))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await
        .with_context(|| format!("migration {name} could not be recorded"))?;
        tx.commit()
            .await
            .with_context(|| format!("migration {name} could not be committed"))?;
        tracing::info!(migration = name, "store migrated");
    }
    Ok(())
}
