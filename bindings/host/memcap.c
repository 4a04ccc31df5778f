/* memcap.c - the memory cap (see memcap.h). */
#include "memcap.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#define MIB (1024ull * 1024ull)

static uint64_t cap;            /* 0 = none */
static uint64_t headroom;
static uint64_t lua_bytes, lua_peak, refused;
static int in_step;

static uint64_t phys_bytes(void) {
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || psz <= 0) return 0;
  return (uint64_t)pages * (uint64_t)psz;
}

/* cgroup v2 limit of this process ("max" or absent: none). */
static uint64_t cgroup_bytes(void) {
  FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
  if (!f) return 0;
  char buf[64] = {0};
  uint64_t v = 0;
  if (fgets(buf, sizeof buf, f) && isdigit((unsigned char)buf[0])) v = strtoull(buf, NULL, 10);
  fclose(f);
  return v;
}

uint64_t ipk_memcap_default(void) {
  uint64_t m = phys_bytes(), c = cgroup_bytes();
  if (c && (!m || c < m)) m = c;
  return m / 4 * 3;
}

int ipk_memcap_parse(const char *s, uint64_t *bytes) {
  if (!s || !bytes) return IPK_EINVAL;
  while (isspace((unsigned char)*s)) s++;
  if (!strcasecmp(s, "off") || !strcasecmp(s, "none")) { *bytes = 0; return 0; }
  if (!isdigit((unsigned char)*s) && *s != '.') return IPK_EINVAL;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (errno || end == s || !isfinite(v) || v < 0) return IPK_EINVAL;
  double mul = 1;
  if (*end == '%') {
    if (v > 100) return IPK_EINVAL;
    mul = (double)phys_bytes() / 100.0;
    end++;
  } else if (*end) {
    switch (toupper((unsigned char)*end)) {
      case 'K': mul = 1024.0; break;
      case 'M': mul = 1024.0 * 1024; break;
      case 'G': mul = 1024.0 * 1024 * 1024; break;
      case 'T': mul = 1024.0 * 1024 * 1024 * 1024; break;
      case 'B': mul = 1; end--; break;   /* "123B" */
      default: return IPK_EINVAL;
    }
    end++;
    if (toupper((unsigned char)*end) == 'I') end++;
    if (toupper((unsigned char)*end) == 'B') end++;
  }
  while (isspace((unsigned char)*end)) end++;
  if (*end) return IPK_EINVAL;
  double b = v * mul;
  if (b >= 18446744073709551615.0) return IPK_EINVAL;
  *bytes = (uint64_t)b;
  return 0;
}

int ipk_memcap_set(uint64_t bytes) {
  cap = bytes;
  headroom = bytes / 4 > 256 * MIB ? bytes / 4 : 256 * MIB;
  if (!IPK_MEMCAP_RLIMIT) return 0;
  struct rlimit rl;
  if (getrlimit(RLIMIT_DATA, &rl) != 0) return IPK_EIO;
  rlim_t want = bytes ? (rlim_t)(bytes + headroom) : rl.rlim_max;
  if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) want = rl.rlim_max;
  rl.rlim_cur = want;
  if (setrlimit(RLIMIT_DATA, &rl) != 0) return IPK_EIO;
  return 0;
}

uint64_t ipk_memcap_get(void) { return cap; }
uint64_t ipk_memcap_lua_bytes(void) { return lua_bytes; }
uint64_t ipk_memcap_lua_peak(void) { return lua_peak; }
uint64_t ipk_memcap_refused(void) { return refused; }
void ipk_memcap_in_step(int on) { in_step = on != 0; }

void *ipk_memcap_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    lua_bytes -= old;
    return NULL;
  }
  if (cap && nsize > old) {
    uint64_t limit = in_step ? cap : cap + headroom / 2;
    if (lua_bytes + (nsize - old) > limit) {
      refused++;
      return NULL;   /* LuaJIT raises "not enough memory" */
    }
  }
  void *p = realloc(ptr, nsize);
  if (!p) {
    refused++;       /* RLIMIT_DATA or the system: out of memory all the same */
    return NULL;
  }
  lua_bytes = lua_bytes - old + nsize;
  if (lua_bytes > lua_peak) lua_peak = lua_bytes;
  return p;
}
