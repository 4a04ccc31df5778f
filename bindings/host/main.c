/* ipkrun - the host: a LuaJIT state with the ipk Lua layer on package.path,
 * dispatching to ipk.cli (luvi's shape: a thin main, everything else in Lua).
 * The core's symbols are exported from this executable (-rdynamic), so
 * bindings/lua/ipk/core.lua binds them through ffi.C without dlopen.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipk/loop.h"
#include "ipk/train.h"
#include "memcap.h"

/* Lua search path: $IPK_LUA_DIRS (';'-separated roots) overrides; a build
 * tree uses the source checkout; an installed ipkrun its share dir. */
static void set_paths(lua_State *L) {
  char buf[8192];
  const char *dirs = getenv("IPK_LUA_DIRS");
  struct stat st;
  if (dirs && *dirs) {
    size_t o = 0;
    const char *p = dirs;
    while (*p && o < sizeof buf - 64) {
      const char *e = strchr(p, ';');
      size_t n = e ? (size_t)(e - p) : strlen(p);
      o += (size_t)snprintf(buf + o, sizeof buf - o, "%.*s/?.lua;%.*s/?/init.lua;", (int)n, p, (int)n, p);
      if (!e) break;
      p = e + 1;
    }
  } else if (stat(IPK_SOURCE_DIR "/scripts/ipk/init.lua", &st) == 0) {
    snprintf(buf, sizeof buf,
             IPK_SOURCE_DIR "/bindings/lua/?.lua;" IPK_SOURCE_DIR "/scripts/?.lua;"
             IPK_SOURCE_DIR "/scripts/?/init.lua;");
  } else {
    snprintf(buf, sizeof buf, IPK_INSTALL_LUADIR "/?.lua;" IPK_INSTALL_LUADIR "/?/init.lua;");
  }
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s%s", buf, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = "(error object is not a string)";
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int panic(lua_State *L) {
  fprintf(stderr, "ipkrun: PANIC: unprotected error in call to Lua API (%s)\n",
          lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
  return 0;
}

/* The memory cap (memcap.h): IPK_MAX_MEMORY or the default; --max-memory
 * changes it later from Lua. Returns 0 or an exit code. */
static int init_memcap(void) {
  const char *env = getenv("IPK_MAX_MEMORY");
  uint64_t cap = ipk_memcap_default();
  if (env && *env && ipk_memcap_parse(env, &cap) != 0) {
    fprintf(stderr, "ipkrun: IPK_MAX_MEMORY=%s: not a size (e.g. 2G, 512M, 50%%, off)\n", env);
    return 2;
  }
  if (ipk_memcap_set(cap) != 0)
    fprintf(stderr, "ipkrun: warning: cannot set RLIMIT_DATA for the memory cap\n");
  return 0;
}

int main(int argc, char **argv) {
  ipk_train_init();
  int rc = init_memcap();
  if (rc) return rc;
  /* Our allocator counts the Lua heap for the cap; lua_newstate accepts
   * one only in GC64 mode (else NULL: fall back, RLIMIT_DATA still caps). */
  lua_State *L = lua_newstate(ipk_memcap_lua_alloc, NULL);
  if (L) lua_atpanic(L, panic); else L = luaL_newstate();
  if (!L) { fputs("ipkrun: cannot create Lua state\n", stderr); return 70; }
  luaL_openlibs(L);
  set_paths(L);

  lua_pushcfunction(L, traceback);
  lua_getglobal(L, "require");
  lua_pushstring(L, "ipk.cli");
  if (lua_pcall(L, 1, 1, 1) != 0) {
    fprintf(stderr, "ipkrun: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 70;
  }
  /* ipk.cli returns main(argv...) -> exit code */
  lua_newtable(L);
  for (int i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  int code = 70;
  if (lua_pcall(L, 1, 1, 1) != 0) {
    fprintf(stderr, "ipkrun: internal error: %s\n", lua_tostring(L, -1));
  } else {
    code = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
  }
  fflush(stdout);
  lua_close(L);
  return code;
}
