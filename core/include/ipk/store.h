/* ipk/store.h - the embedded block store and pin set under $IPK_HOME.
 *
 * Layout (since the pack store; the old one is still read, see below):
 *   blocks/packs/NNNNNNNNNN.pack  append-only pack files. A record is a
 *       16-byte header ("IPKB", compression 0 plain / 1 zstd, multihash
 *       length, 2 zero bytes, block size u32 LE, stored length u32 LE), the
 *       block's binary multihash, then the stored bytes.
 *   blocks/index.db  SQLite (WAL, synchronous=FULL), owned by the store:
 *       blocks(mh BLOB PRIMARY KEY, pack, off, len, size, comp): where each
 *       block's stored bytes are (off = payload offset, len = stored bytes,
 *       size = block bytes); packs(id, size): the published length of each
 *       pack (bytes past it are a torn tail); settings(key, value).
 * Blocks are keyed by multihash, so CIDv0 and CIDv1 of the same bytes share
 * one record; identity CIDs are never written (has/get answer from the CID).
 *
 * Write path: put appends a record to the pack this handle holds an
 * exclusive flock on and remembers its location in memory. ipk_store_sync
 * (which ipk_store_pin_add calls before recording a pin, and close calls)
 * fdatasyncs the pack and then publishes the locations to index.db in one
 * transaction, so every pinned block is on disk and indexed before anything
 * refers to it; other processes see a block once it is published. A kill -9
 * loses only unpublished (so unpinned) blocks: the pack's tail beyond its
 * published size is truncated by the next writer that claims the pack.
 * A new pack never reuses or truncates an existing file: its id is past
 * every pack file on disk and every id the index handed out, and the file
 * is created O_EXCL (an existing one is skipped). Writeback of a pack starts
 * every 8 MiB while importing, so the sync before a pin waits for little.
 * ipk_store_put hashes the bytes to check them against the CID;
 * ipk_store_put_hashed (the importer's path, ipk_blocks_t.put_hashed) trusts
 * the caller, which has just computed the CID from these very bytes: every
 * imported block is hashed once.
 *
 * Lost index: when ipk_store_open finds no pack rows in index.db (it was
 * deleted, lost or recreated empty) but pack files exist, it rebuilds the
 * index from the pack records in one transaction before returning: every
 * record is decompressed and re-hashed against its multihash; one that does
 * not verify is skipped, and a pack is published up to its last
 * well-formed record (a torn tail is ignored, and truncated by the next
 * writer). What it did is kept in index.db's settings as "rebuild_report"
 * (one line per pack with skipped records or a torn tail, then
 * "index rebuilt from N pack files: M blocks"). Pins live in ipk.db and
 * stay valid. A failed rebuild fails the open (nothing is changed).
 *
 * Read path: every read re-hashes the block (after decompressing) and fails
 * with IPK_EVERIFY on mismatch; a re-put of the right bytes repairs a damaged
 * block (a new record is appended and indexed). A read-ahead thread per
 * handle verifies the records that follow a reader moving forward through a
 * pack, so a cat hashes on another core while it writes.
 *
 * Compression at rest: the setting "compression" in index.db ("none", the
 * default; "zstd" = level 3; "zstd:N" for level 1..19; ipkrun repo
 * compression) applies to blocks written from then on; a block is kept
 * compressed only when that saves at least 1/32 of it. CIDs address the
 * uncompressed bytes; reads verify the decompressed bytes.
 *
 * Old layout: $IPK_HOME/blocks/<XX>/<KEY> files (KEY = base32 of the
 * multihash, XX its next-to-last two characters, Kubo's flatfs) are read
 * both ways: has/get/del fall back to them, and gc moves the ones a pin
 * still reaches into packs (and deletes the rest). Nothing else migrates.
 *
 * gc: mark (walk every pin: mark_reachable in store.c), then forget every
 * unmarked block in the index, then rewrite packs less than half live (and
 * merge packs under 16 MiB) by copying their live records into a new pack,
 * publishing, and only then deleting the old files. Each open handle holds
 * $IPK_HOME/store.lock shared; gc takes it exclusively (waiting up to 10 s,
 * else IPK_EBUSY), so no other process is importing or reading meanwhile.
 *
 * Thread-safety: put/put_hashed/get/has/del/blocks() may run on worker
 * threads at the same time (one mutex guards the index connection and the
 * append; hashing, compression and reads run outside it); pin/gc/db calls
 * belong to the loop thread. Several processes may share one home: each
 * appends to its own pack, index.db and ipk.db are WAL with a busy timeout.
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

/* Verify data against cid (IPK_EVERIFY), then append (no-op if present
 * with the same bytes). Identity-multihash CIDs are never written: has/get
 * answer from the CID itself, as Kubo does. Blocks over 64 MiB: IPK_ERANGE. */
int ipk_store_put(ipk_store_t *s, const ipk_cid_t *cid, const uint8_t *data, size_t n);
/* put for a caller that computed cid by hashing data itself just now (the
 * importer): not hashed again. Never for bytes whose CID came from outside. */
int ipk_store_put_hashed(ipk_store_t *s, const ipk_cid_t *cid, const uint8_t *data, size_t n);
/* Read and verify. *data malloc'd (caller free()s). IPK_ENOBLOCK / IPK_EVERIFY. */
int ipk_store_get(ipk_store_t *s, const ipk_cid_t *cid, uint8_t **data, size_t *n);
/* 1 present, 0 absent, <0 error. */
int ipk_store_has(ipk_store_t *s, const ipk_cid_t *cid);
/* Remove one block from the index (and its old-layout file); its pack
 * space is reclaimed by gc. IPK_ENOBLOCK if absent. Pins are not consulted:
 * deleting a pinned block is the caller's decision (gc is the safe path). */
int ipk_store_del(ipk_store_t *s, const ipk_cid_t *cid);
/* A block sink/source view of this store (valid while s is open). */
ipk_blocks_t ipk_store_blocks(ipk_store_t *s);

/* Make every block this handle wrote durable (fdatasync of its pack) and
 * publish it in index.db (committed with synchronous=FULL). */
int ipk_store_sync(ipk_store_t *s);

/* Where a block's stored bytes are: 1 in a pack (path of the pack, *off =
 * payload offset, *len = stored bytes), 2 an old-layout file (*off = 0),
 * 0 not stored (identity CIDs included), <0 error. For tests and repair. */
int ipk_store_locate(ipk_store_t *s, const ipk_cid_t *cid, char *path, size_t cap, uint64_t *off, uint64_t *len);

/* Compression of blocks written from now on, persisted in index.db for
 * every process: "none", "zstd" (level 3) or "zstd:N" (N 1..19); anything
 * else IPK_EINVAL. ipk_store_compression writes the current one into buf. */
int ipk_store_set_compression(ipk_store_t *s, const char *spec);
int ipk_store_compression(ipk_store_t *s, char *buf, size_t cap);

/* Counts: blocks in packs (published, this handle's included), their bytes
 * (uncompressed) and stored bytes (after compression, without record
 * headers), pack files and their published bytes (dead records included
 * until gc), old-layout files and bytes. */
typedef struct {
  uint64_t blocks, bytes, stored_bytes;
  uint64_t packs, pack_bytes;
  uint64_t legacy_blocks, legacy_bytes;
} ipk_store_stat_t;
int ipk_store_stat(ipk_store_t *s, ipk_store_stat_t *out);

/* Kubo's `repo verify`: re-hash every block (packs on every core, then old-
 * layout files), then check every pin: every block it reaches is present
 * and not bad. Bad blocks are named by the CIDv1 (raw codec) of their
 * multihash (the store keys blocks by multihash, not codec); bad pins by
 * their pin CID; why says what is wrong (corrupt, missing, unreadable, with
 * the file and offset). Returns 0 when the check ran (look at the counts),
 * <0 when it could not. out->bad is malloc'd: ipk_store_verify_clear. */
typedef struct {
  int is_pin;                    /* 0 a block, 1 a pin */
  char cid[IPK_CID_STR_MAX];
  char why[1024];
} ipk_store_bad_t;
typedef struct {
  uint64_t blocks, bad_blocks;   /* blocks re-hashed, of which bad */
  uint64_t pins, bad_pins;       /* pins checked, of which bad */
  ipk_store_bad_t *bad;          /* nbad entries, blocks first */
  size_t nbad;
  size_t capbad;                 /* internal */
} ipk_store_verify_t;
int ipk_store_verify(ipk_store_t *s, ipk_store_verify_t *out);
void ipk_store_verify_clear(ipk_store_verify_t *v);

/* Pins, keyed by the canonical CID string (v0 base58btc, v1 base32), so a
 * v0 and a v1 pin of one DAG are two pins. A recursive pin requires every
 * block of the DAG to be present (IPK_ENOBLOCK naming the missing CID, and
 * no pin is recorded); a direct pin requires its block. Re-pinning updates
 * the name (when non-NULL) and upgrades direct to recursive; a direct pin of
 * a recursively pinned CID is IPK_ECONFLICT. pin_rm of an unpinned CID is
 * IPK_ENOENT. Table: pins(cid TEXT PRIMARY KEY, type, name, created_at unix s),
 * versioned by PRAGMA user_version (owned by the store; other components
 * must version their tables another way). pin_add first makes this
 * handle's blocks durable and published (ipk_store_sync). Its walk reads
 * back the blocks this handle put since its last gc (up to 65536 of them)
 * without hashing them again: their bytes were hashed on the way in (put
 * verified them, the importer computed their CIDs from them, or a re-put
 * compared them); every other block the walk reads is verified. */
int ipk_store_pin_add(ipk_store_t *s, const ipk_cid_t *cid, int recursive, const char *name);
int ipk_store_pin_rm(ipk_store_t *s, const ipk_cid_t *cid);
/* 1 pinned, 0 not. */
int ipk_store_pin_has(ipk_store_t *s, const ipk_cid_t *cid);
/* Calls cb for each pin in CID order (name NULL when unset; strings valid
 * for the call only). A nonzero cb return stops the listing and is returned. */
typedef int (*ipk_store_pin_cb)(void *ud, const char *cid, const char *type, const char *name);
int ipk_store_pin_ls(ipk_store_t *s, ipk_store_pin_cb cb, void *ud);

/* Remove every block not reachable from a pin (compacting packs as the
 * header describes) and temp files left by crashed writers. A pack file
 * the index does not know is deleted only when it holds no verified record
 * the index lacks (every block in it is indexed elsewhere, or it holds
 * none): such files are crash debris. Otherwise gc cannot prove its
 * records are garbage (the index may have been replaced), so it adopts the
 * pack (indexes its verified records, noted in index.db's settings as
 * "adopt_report") and the next gc removes them only if no pin reaches
 * them: losing data is worse than keeping garbage for one more gc. A
 * pinned DAG that cannot be walked (missing or corrupt block) aborts before
 * anything is removed. Counts (blocks, block bytes) are optional. Waits for
 * the exclusive store lock (other handles closed), else IPK_EBUSY. */
int ipk_store_gc(ipk_store_t *s, uint64_t *removed_blocks, uint64_t *removed_bytes);

/* The store's database (registry, runs); owned by the store. */
ipk_db_t *ipk_store_db(ipk_store_t *s);

#endif
