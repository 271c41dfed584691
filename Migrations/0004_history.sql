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
