//! Persistence: the evidence log on embedded SQLite (WAL) with group commit.
