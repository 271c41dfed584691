-- The store's projections, schema 2 (schema 1 was Migrations/0001..0004 in
-- one namespace; a database of schema 1 is emptied and rebuilt from the log).
-- Every table here is derived from the event log and can be rebuilt from it
-- (Store.rebuildProjections). Times are milliseconds since 1970 and only order
-- what users see; replication decisions use log cursors and version vectors.

-- The log position each projection reflects: the store's own tables
-- ('store') and each extension's (its name, e.g. 'messaging'). Written in the
-- same transaction as the rows, so a crash never leaves rows and cursor out of step.
CREATE TABLE projection_cursors (
    projection TEXT PRIMARY KEY,
    log_id BLOB NOT NULL,
    applied_sequence INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE conversations (
    id BLOB PRIMARY KEY,
    kind INTEGER NOT NULL,               -- 1 direct, 2 group
    title TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_sequence INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 0,    -- group membership epoch
    last_activity_at INTEGER NOT NULL,   -- max(created_at, newest message's sent time)
    last_message_at INTEGER,             -- (sent time, id) of the newest message
    last_message_id BLOB,
    read_up_to_at INTEGER,               -- read marker: (sent time, message id) of the last read message
    read_up_to_id BLOB,
    unread_count INTEGER NOT NULL DEFAULT 0,
    created_by_log BLOB                  -- origin log of the creation event: this store's log means it created the conversation
) WITHOUT ROWID;
CREATE INDEX conversations_by_activity ON conversations(last_activity_at DESC, id DESC);

CREATE TABLE members (
    conversation_id BLOB NOT NULL,
    account_id TEXT NOT NULL,
    PRIMARY KEY (conversation_id, account_id)
) WITHOUT ROWID;
CREATE INDEX members_by_account ON members(account_id);

-- One row per message, keyed by the log sequence of the event that created it.
CREATE TABLE messages (
    sequence INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    conversation_id BLOB NOT NULL,
    sender TEXT NOT NULL,
    direction INTEGER NOT NULL,          -- 1 sent by this installation, 2 received
    text TEXT NOT NULL,
    content_type TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    edited_at INTEGER
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, sent_at, id);

-- Full-text index over message text (external content: rows live in messages).
-- The projector maintains it (a trigger would be three times slower).
CREATE VIRTUAL TABLE message_search USING fts5(text, content = 'messages', content_rowid = 'sequence');

CREATE TABLE contacts (
    account_id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    sequence INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE consent (
    entity TEXT PRIMARY KEY,
    state INTEGER NOT NULL,              -- 0 unknown, 1 allowed, 2 denied
    sequence INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE preferences (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    sequence INTEGER NOT NULL
) WITHOUT ROWID;

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
