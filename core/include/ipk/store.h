/* ipk/store.h - the embedded block store and pin set under $IPK_HOME.
 *
 * Layout: $IPK_HOME/blocks/<XX>/<KEY> where KEY is the base32 (lower, no
 * prefix) of the block's multihash and XX its next-to-last two characters
 * (Kubo's flatfs next-to-last/2 sharding), so CIDv0 and CIDv1 of the same
 * bytes share one file. Writes go to a temp file, then rename: no reader ever
 * sees a partial block under its name. Durability is established by
 * ipk_store_sync (syncfs), which ipk_store_pin_add calls before recording a
 * pin, so every pinned block is on disk before anything refers to it. Every
 * read re-hashes the bytes (IPK_EVERIFY on mismatch; a re-put of the right
 * bytes repairs a damaged file). $IPK_HOME/ipk.db (SQLite, WAL) holds pins
 * and the registry. Each open handle holds $IPK_HOME/store.lock shared; gc
 * takes it exclusively (waiting up to 10 s, else IPK_EBUSY), so another
 * process's import in flight never loses its blocks.
 *
 * Thread-safety: put/get/has/del/blocks() may run on worker threads at the
 * same time (plain file operations, no lock); pin/gc/db calls belong to the
 * loop thread. Several processes may share one home: block writes are
 * atomic renames and ipk.db is WAL with a busy timeout.
 * Ownership: the store owns its ipk_db_t; ipk_store_get's buffer is the
 * caller's (free()).
 */
#ifndef IPK_STORE_H
#define IPK_STORE_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "cid.h"
#include "blocks.h"
#include "db.h"

typedef struct ipk_store_s ipk_store_t;

/* Default home: $IPK_HOME, else ${XDG_DATA_HOME:-$HOME/.local/share}/ipk.
 * Writes into buf[0..cap); returns IPK_ERANGE / IPK_EINVAL (no HOME). */
int ipk_store_default_home(char *buf, size_t cap);

/* Open (creating if needed) the embedded store at home. */
int ipk_store_open(const char *home, ipk_store_t **out, ipk_errbuf_t *eb);
void ipk_store_close(ipk_store_t *s);
/* Detail message of the last failure on this handle in the calling thread
 * (kept per thread, errno-style, so worker threads never overwrite the loop
 * thread's message); "" when this thread's last failure was elsewhere. */
const char *ipk_store_errmsg(ipk_store_t *s);
const char *ipk_store_home(ipk_store_t *s);

/* Verify data against cid (IPK_EVERIFY), then write atomically (no-op if
 * present). Identity-multihash CIDs are never written: has/get answer from
 * the CID itself, as Kubo does. */
int ipk_store_put(ipk_store_t *s, const ipk_cid_t *cid, const uint8_t *data, size_t n);
/* Read and verify. *data malloc'd (caller free()s). IPK_ENOBLOCK / IPK_EVERIFY. */
int ipk_store_get(ipk_store_t *s, const ipk_cid_t *cid, uint8_t **data, size_t *n);
/* 1 present, 0 absent, <0 error. */
int ipk_store_has(ipk_store_t *s, const ipk_cid_t *cid);
/* Remove one block file (IPK_ENOBLOCK if absent). Pins are not consulted:
 * deleting a pinned block is the caller's decision (gc is the safe path). */
int ipk_store_del(ipk_store_t *s, const ipk_cid_t *cid);
/* A block sink/source view of this store (valid while s is open). */
ipk_blocks_t ipk_store_blocks(ipk_store_t *s);

/* Flush every block written so far to disk (syncfs of the blocks dir). */
int ipk_store_sync(ipk_store_t *s);

/* Pins, keyed by the canonical CID string (v0 base58btc, v1 base32), so a
 * v0 and a v1 pin of one DAG are two pins. A recursive pin requires every
 * block of the DAG to be present (IPK_ENOBLOCK naming the missing CID, and
 * no pin is recorded); a direct pin requires its block. Re-pinning updates
 * the name (when non-NULL) and upgrades direct to recursive; a direct pin of
 * a recursively pinned CID is IPK_ECONFLICT. pin_rm of an unpinned CID is
 * IPK_ENOENT. Table: pins(cid TEXT PRIMARY KEY, type, name, created_at unix s),
 * versioned by PRAGMA user_version (owned by the store; other components
 * must version their tables another way). */
int ipk_store_pin_add(ipk_store_t *s, const ipk_cid_t *cid, int recursive, const char *name);
int ipk_store_pin_rm(ipk_store_t *s, const ipk_cid_t *cid);
/* 1 pinned, 0 not. */
int ipk_store_pin_has(ipk_store_t *s, const ipk_cid_t *cid);
/* Calls cb for each pin in CID order (name NULL when unset; strings valid
 * for the call only). A nonzero cb return stops the listing and is returned. */
typedef int (*ipk_store_pin_cb)(void *ud, const char *cid, const char *type, const char *name);
int ipk_store_pin_ls(ipk_store_t *s, ipk_store_pin_cb cb, void *ud);

/* Remove every block not reachable from a pin, and temp files left by
 * crashed writers. A pinned DAG that cannot be walked (missing or corrupt
 * block) aborts before anything is removed. Counts (blocks, bytes) are
 * optional. Not coordinated with other processes: do not gc while another
 * process is between putting blocks and pinning them. */
int ipk_store_gc(ipk_store_t *s, uint64_t *removed_blocks, uint64_t *removed_bytes);

/* The store's database (registry, runs); owned by the store. */
ipk_db_t *ipk_store_db(ipk_store_t *s);

#endif
