//! The failover soak's schema on the PostgreSQL server: the store's tables and the
//! gateways' own table in a schema of the run's own, so that runs do not meet, dropped at
//! the end.

use chat_store::postgres::postgres;

/// A schema of the run's own on the server, dropped at the end.
pub(super) struct Schema {
    admin: String,
    name: String,
    /// The server's URL with the schema as the search path.
    pub(super) url: String,
}

impl Schema {
    /// Creates the schema `chat_soak_{pid}_{seed}` (dropping one left by an earlier run).
    pub(super) fn create(admin: &str, seed: u64) -> Result<Self, String> {
        let name = format!("chat_soak_{}_{seed}", std::process::id());
        let mut db = postgres::Client::connect(admin, postgres::NoTls)
            .map_err(|_| "cannot connect to the PostgreSQL server".to_owned())?;
        db.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ))
        .map_err(|e| format!("creating the run's schema: {e}"))?;
        let separator = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{separator}options=-csearch_path%3D{name}");
        Ok(Self {
            admin: admin.to_owned(),
            name,
            url,
        })
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // On a thread of its own: the synchronous client may not block a runtime's thread,
        // and the schema may be dropped on one (at the end of the run, or on an error).
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            if let Ok(mut db) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = db.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
            }
        });
        let _ = dropped.join();
    }
}
