//! chipflap's PostgreSQL store (`docs/store.md`): one module per table group, each function the
//! PostgreSQL twin of the SQLite store's function of the same name (`src/db/`), answering the
//! same `chipflap_domain` types with the same semantics.
