/* memcap.h - the memory cap of an ipkrun process (IPK_MAX_MEMORY,
 * --max-memory): a recipe that allocates without bound is stopped with a
 * clear error instead of taking the machine's memory.
 *
 * Two layers, both in the host (the core allocates with malloc and reports
 * IPK_ENOMEM; it knows nothing of the cap):
 *  - The Lua heap. ipkrun creates its state with ipk_memcap_lua_alloc
 *    (lua_newstate takes an allocator in LuaJIT's GC64 mode, the x86-64
 *    default in Debian 12's luajit 2.1), which counts every byte. While
 *    step code runs (ipk_memcap_in_step(1), set by ipk.sched around a
 *    step's resume) an allocation that would take the heap past the cap is
 *    refused: LuaJIT raises "not enough memory" in the step, ipk.sched
 *    notes that the refusal happened in that task, and the runner reports
 *    "step 'X': memory cap exceeded...". Outside step code (the scheduler,
 *    the runner recording the failure) the heap may use a headroom above
 *    the cap, so the failure can be handled and the step's garbage
 *    collected. The count includes garbage not collected yet.
 *  - Everything else (core buffers: safetensors, IDX, training batches,
 *    store and CAR reads; curl, SQLite, BLAS): RLIMIT_DATA (private
 *    writable memory, Linux >= 4.7) is set to cap + headroom, so a
 *    malloc past it fails and the core returns IPK_ENOMEM. The whole
 *    process's private memory thus stays below cap + headroom.
 * headroom = max(cap / 4, 256 MiB); the Lua heap outside step code may
 * use half of it.
 *
 * Default cap: 75% of the physical memory, or of the cgroup's memory.max
 * when that is lower (a container). 0 = no cap.
 * Threading: the allocator runs on the Lua thread only (one state).
 */
#ifndef IPK_HOST_MEMCAP_H
#define IPK_HOST_MEMCAP_H

/* AddressSanitizer maps its allocator regions on demand as private
 * writable memory, so under any RLIMIT_DATA its own mmap fails ("ERROR:
 * Failed to mmap") in the first allocation after the limit is set. A
 * sanitized build (-DIPK_SANITIZE=ON) therefore caps the Lua heap only. */
#if defined(__SANITIZE_ADDRESS__)
#define IPK_MEMCAP_RLIMIT 0
#else
#define IPK_MEMCAP_RLIMIT 1
#endif
#include <stddef.h>
#include <stdint.h>
#include "ipk/err.h"

/* Parse a size: "2G", "1.5GiB", "512M", "4096K", "123" (bytes), "50%" (of
 * the physical memory), "0" / "off" / "none" (no cap). Suffixes K, M, G, T
 * are powers of 1024, case-insensitive, optional "B"/"iB". IPK_EINVAL on
 * anything else (the caller names the flag). */
int ipk_memcap_parse(const char *s, uint64_t *bytes);
/* The default cap (see above) in bytes. */
uint64_t ipk_memcap_default(void);
/* Set the cap (0 = none): the Lua heap limit and RLIMIT_DATA (soft limit;
 * IPK_EIO with errno's meaning lost when setrlimit refuses, e.g. above a
 * hard limit). */
int ipk_memcap_set(uint64_t bytes);
/* The current cap in bytes (0 = none). */
uint64_t ipk_memcap_get(void);
/* Lua heap bytes allocated now, and the most ever. */
uint64_t ipk_memcap_lua_bytes(void);
uint64_t ipk_memcap_lua_peak(void);
/* Allocations refused so far (Lua heap over its limit). Monotonic: compare
 * before and after a resume to see whether a task hit the cap. */
uint64_t ipk_memcap_refused(void);
/* Step code runs (1) or not (0): the Lua heap limit is the cap, or the cap
 * plus half the headroom. */
void ipk_memcap_in_step(int on);

/* The lua_Alloc of ipkrun's state (ud unused). */
void *ipk_memcap_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

#endif
