-- Installation identities held in the log (their secret keys stay sealed there)
-- and the generation claims hard restores make. See InstallationKeys and
-- InstallationRestored in Protos/keepsake/v1/events.proto.
CREATE TABLE installations (
    id BLOB PRIMARY KEY,              -- 16 bytes
    public_key BLOB NOT NULL,         -- Ed25519, 32 bytes
    keys_sequence INTEGER NOT NULL,   -- log sequence of the InstallationKeys event
    created_by_log BLOB NOT NULL      -- origin log of that event, which holds generation 1
);

-- Who runs an installation: the claim with the highest (generation, log_id).
CREATE TABLE installation_claims (
    installation_id BLOB NOT NULL,
    generation INTEGER NOT NULL,
    log_id BLOB NOT NULL,             -- 16 bytes
    sequence INTEGER NOT NULL,        -- log sequence of the event that made the claim
    PRIMARY KEY (installation_id, generation, log_id)
) WITHOUT ROWID;
