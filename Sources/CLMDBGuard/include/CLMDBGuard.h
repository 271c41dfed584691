#ifndef KEEPSAKE_LMDB_GUARD_H
#define KEEPSAKE_LMDB_GUARD_H

#include <lmdb.h>

/// LMDB aborts the process when one of its internal assertions fails, which a
/// damaged page can trigger. These wrappers run the LMDB call with the
/// environment's assertion hook armed: a failed assertion returns
/// MDB_CORRUPTED from the wrapper instead of aborting, and the assertion's text
/// is kept for the caller (keepsake_mdb_last_assertion). A write transaction
/// that failed this way must be aborted by the caller; a failed commit is
/// aborted here, as LMDB frees a transaction on any commit failure.

/// Installs the hook on an environment; call once, right after mdb_env_create.
int keepsake_mdb_guard(MDB_env *env);

/// The text of the last assertion caught on this thread, or an empty string.
const char *keepsake_mdb_last_assertion(void);

int keepsake_mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned int flags, MDB_txn **txn);
int keepsake_mdb_txn_commit(MDB_txn *txn);
int keepsake_mdb_dbi_open(MDB_txn *txn, const char *name, unsigned int flags, MDB_dbi *dbi);
int keepsake_mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int keepsake_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned int flags);
int keepsake_mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int keepsake_mdb_drop(MDB_txn *txn, MDB_dbi dbi, int del);
int keepsake_mdb_stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *stat);
int keepsake_mdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cursor);
int keepsake_mdb_cursor_get(MDB_cursor *cursor, MDB_val *key, MDB_val *data, MDB_cursor_op op);

#endif
