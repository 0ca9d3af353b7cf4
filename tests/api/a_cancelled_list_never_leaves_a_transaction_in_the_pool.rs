//! Rule: no pooled connection is ever lent out inside a transaction. A statement list that
//! opens its own transaction (`db::Writer::send_list`, the refresh grant's one-round-trip
//! rotation) and whose caller is cancelled before its outcome arrives may have stopped inside
//! that transaction: its connection is closed, not returned, so the next writer finds SQLite's
//! write lock free.

use std::time::Duration;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_list_cancelled_inside_its_transaction_closes_its_connection() {
    let app = spawn_app().await;
    let mut writer = chipflap::db::writer(app.db(), &app.state.write_epoch)
        .await
        .unwrap();
    // The list takes the write lock and never finishes; the caller gives up on it.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(200),
        writer.send_list(async |conn| {
            sqlx::query("begin immediate").execute(&mut *conn).await?;
            std::future::pending::<()>().await;
            Ok(())
        }),
    )
    .await;
    assert!(cancelled.is_err(), "the list was cancelled");
    drop(writer);

    // Every connection the pool lends can write at once (well inside SQLite's 10 s busy
    // timeout); one still inside the cancelled transaction could not begin another.
    let writes = async {
        for _ in 0..app.db().size() + 1 {
            let mut writer = chipflap::db::writer(app.db(), &app.state.write_epoch)
                .await
                .unwrap();
            let mut tx = writer.begin().await.unwrap();
            sqlx::query("insert into throttles (key, tat_ms) values ('test:cancelled', 1) on conflict (key) do update set tat_ms = tat_ms + 1")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(5), writes)
        .await
        .expect("the write lock was free");
}
