/// The PostgreSQL relay schema, as migrations applied in order (recorded in
/// `relay_migrations`). The same tables as the SQLite store's, in PostgreSQL's
/// types; docs/RELAY-STORAGE.md describes both. Never edit a shipped
/// migration: add the next one.
enum PostgresRelaySchema {
    struct Migration {
        let name: String
        /// One statement each (PostgreSQL's extended protocol runs one at a time).
        let statements: [String]
    }

    static let migrations = [
        Migration(name: "0001_relay", statements: [
            """
            CREATE TABLE items (
                cursor BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- one sequence for all topics
                topic TEXT NOT NULL,
                digest BYTEA NOT NULL,                                   -- BLAKE2b-256 of data
                data BYTEA NOT NULL,
                received_at BIGINT NOT NULL,                             -- milliseconds since 1970, relay clock
                UNIQUE (topic, digest)
            )
            """,
            "CREATE INDEX items_by_topic ON items (topic, cursor)",
            """
            CREATE TABLE installations (
                installation BYTEA PRIMARY KEY,
                account TEXT NOT NULL,
                signing_key BYTEA,                                       -- from verified bundles: checks request signatures
                revoked_at BIGINT                                        -- set by a verified revocation
            )
            """,
            """
            CREATE TABLE prekeys (
                installation BYTEA NOT NULL,
                prekey_id BIGINT NOT NULL,
                fallback BOOLEAN NOT NULL,
                data BYTEA,                                              -- SignedPrekey; NULL once a one-time prekey was served
                uploaded BIGINT NOT NULL,                                -- upload order: the newest fallback is served
                PRIMARY KEY (installation, prekey_id)
            )
            """,
            "CREATE SEQUENCE prekey_upload_order",
            """
            CREATE TABLE commit_claims (
                topic TEXT NOT NULL,
                epoch BIGINT NOT NULL,
                digest BYTEA NOT NULL,
                PRIMARY KEY (topic, epoch)
            )
            """,
            """
            CREATE TABLE backups (
                id TEXT PRIMARY KEY,                                     -- 64 random hex digits: the capability to download
                installation BYTEA NOT NULL,
                locator TEXT,
                size BIGINT NOT NULL,
                digest TEXT NOT NULL,                                    -- BLAKE2b-256 of the contents, hex
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                delete_after_download BOOLEAN NOT NULL,
                claimed BOOLEAN NOT NULL DEFAULT false                   -- a delete-after-download file being downloaded
            )
            """,
            "CREATE INDEX backups_by_expiry ON backups (expires_at)",
            "CREATE INDEX backups_by_locator ON backups (locator, created_at)",
            "CREATE TABLE request_nonces (nonce BYTEA PRIMARY KEY, seen_at BIGINT NOT NULL)",
            "CREATE INDEX request_nonces_by_time ON request_nonces (seen_at)",
            "CREATE TABLE uploads (installation BYTEA NOT NULL, at BIGINT NOT NULL)",
            "CREATE INDEX uploads_by_installation ON uploads (installation, at)",
            """
            CREATE TABLE prekey_claims (
                requester BYTEA NOT NULL,
                target BYTEA NOT NULL,
                at BIGINT NOT NULL,
                fallback BOOLEAN NOT NULL
            )
            """,
            "CREATE INDEX prekey_claims_by_requester ON prekey_claims (requester, target, at)",
            "CREATE INDEX prekey_claims_by_target ON prekey_claims (target, at)",
            "CREATE INDEX prekey_claims_by_time ON prekey_claims (at)",
        ]),
    ]
}
