#include "CLMDBGuard.h"

#include <setjmp.h>
#include <stdio.h>

// The jump target of the innermost guarded call on this thread, or NULL.
static _Thread_local jmp_buf *armed;
static _Thread_local char last_assertion[256];

static void on_assertion(MDB_env *env, const char *message) {
    (void)env;
    snprintf(last_assertion, sizeof last_assertion, "%s", message);
    // Unarmed (a call outside these wrappers): LMDB aborts as it always did.
    if (armed != NULL) longjmp(*armed, 1);
}

int keepsake_mdb_guard(MDB_env *env) { return mdb_env_set_assert(env, on_assertion); }

const char *keepsake_mdb_last_assertion(void) { return last_assertion; }

// Runs CALL with the hook armed; a caught assertion runs ON_FAILURE and returns MDB_CORRUPTED.
#define GUARDED(CALL, ON_FAILURE)                \
    do {                                         \
        jmp_buf target;                          \
        jmp_buf *outer = armed;                  \
        if (setjmp(target) != 0) {               \
            armed = outer;                       \
            ON_FAILURE;                          \
            return MDB_CORRUPTED;                \
        }                                        \
        armed = &target;                         \
        last_assertion[0] = '\0';                \
        int status = (CALL);                     \
        armed = outer;                           \
        return status;                           \
    } while (0)

int keepsake_mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned int flags, MDB_txn **txn) {
    GUARDED(mdb_txn_begin(env, parent, flags, txn), (void)0);
}

int keepsake_mdb_txn_commit(MDB_txn *txn) { GUARDED(mdb_txn_commit(txn), mdb_txn_abort(txn)); }

int keepsake_mdb_dbi_open(MDB_txn *txn, const char *name, unsigned int flags, MDB_dbi *dbi) {
    GUARDED(mdb_dbi_open(txn, name, flags, dbi), (void)0);
}

int keepsake_mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data) {
    GUARDED(mdb_get(txn, dbi, key, data), (void)0);
}

int keepsake_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned int flags) {
    GUARDED(mdb_put(txn, dbi, key, data, flags), (void)0);
}

int keepsake_mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data) {
    GUARDED(mdb_del(txn, dbi, key, data), (void)0);
}

int keepsake_mdb_drop(MDB_txn *txn, MDB_dbi dbi, int del) { GUARDED(mdb_drop(txn, dbi, del), (void)0); }

int keepsake_mdb_stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *stat) { GUARDED(mdb_stat(txn, dbi, stat), (void)0); }

int keepsake_mdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cursor) {
    GUARDED(mdb_cursor_open(txn, dbi, cursor), (void)0);
}

int keepsake_mdb_cursor_get(MDB_cursor *cursor, MDB_val *key, MDB_val *data, MDB_cursor_op op) {
    GUARDED(mdb_cursor_get(cursor, key, data, op), (void)0);
}
