-- The messaging extension's tables (docs/PROTOCOL.md). Secrets stay sealed
-- in the log; these tables say which exist and where their events are.

-- The account this store's installation joined (AccountJoined; its X25519
-- identity secret is sealed in that event).
CREATE TABLE account_memberships (
    installation_id BLOB PRIMARY KEY,
    account TEXT NOT NULL,
    identity_key BLOB NOT NULL,       -- X25519 public key
    signed_bundle BLOB NOT NULL,      -- keepsake.wire.v1.SignedContactBundle
    sequence INTEGER NOT NULL
);

-- This store's prekeys (PrekeyCreated). A used one-time prekey's row stays,
-- marked used; its event is erased.
CREATE TABLE prekeys (
    installation_id BLOB NOT NULL,
    prekey_id INTEGER NOT NULL,
    fallback INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (installation_id, prekey_id)
) WITHOUT ROWID;

-- Other installations, from verified contact bundles and revocations (PeerInstallation).
CREATE TABLE peer_installations (
    installation_id BLOB PRIMARY KEY,
    account TEXT NOT NULL,
    signing_key BLOB NOT NULL,        -- Ed25519
    identity_key BLOB NOT NULL,       -- X25519
    created_at INTEGER NOT NULL,
    role TEXT NOT NULL,
    revoked_at INTEGER,               -- messages sent from then on are refused
    sequence INTEGER NOT NULL
);
CREATE INDEX peer_installations_by_account ON peer_installations(account);

-- Sessions gain what choosing between them needs.

-- The newest state of each session (ratchet stream). The state itself stays
-- sealed in the log; this table says which sessions exist and with whom.
CREATE TABLE sessions (
    stream_id BLOB PRIMARY KEY,
    peer_account TEXT NOT NULL,
    peer_installation TEXT NOT NULL,
    step INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    base_key BLOB,                    -- names the session in prekey messages
    active_at INTEGER NOT NULL DEFAULT 0  -- the newest step's time: the most recently active session is used
) WITHOUT ROWID;
CREATE INDEX sessions_by_peer ON sessions(peer_account);
CREATE INDEX sessions_by_installation ON sessions(peer_installation, active_at);

-- History sync requests (XIP-31), from HistoryRequestChanged events. No key
-- material is ever stored: a response's key is used and dropped.
CREATE TABLE history_requests (
    request_id BLOB PRIMARY KEY,      -- 16 bytes
    role INTEGER NOT NULL,            -- 1 requester (this installation asked), 2 provider
    peer_installation TEXT NOT NULL,  -- the other installation, 32 hex digits
    verification_pin INTEGER NOT NULL,
    upload_url TEXT NOT NULL,
    status INTEGER NOT NULL,          -- HistoryStatus: 1 pending, 2 applied, 3 expired, 4 failed, 5 answered, 6 denied
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
