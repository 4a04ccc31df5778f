/* fuzz/fuzz_lua.h - harnesses that embed LuaJIT to fuzz ipk's Lua parsers.
 * The harness script fuzz/lua/<name>.lua returns a function called with
 * each input (a Lua string); it raises when an invariant breaks, which
 * aborts here (libFuzzer saves the input). The core is reached through
 * ffi.C as in ipkrun (the harness binary exports libipk's symbols).
 *
 * Coverage of Lua code: the debug line hook (LuaJIT's JIT is off, so it
 * fires for every line) hashes (chunk, previous line, line) into libFuzzer's
 * extra counters, so new paths through the Lua decoders count as new
 * coverage, not only the C underneath. */
#ifndef IPK_FUZZ_LUA_H
#define IPK_FUZZ_LUA_H
#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>

#include "fuzz.h"

#define LUA_COUNTERS (1 << 16)
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t lua_counters[LUA_COUNTERS];
static uintptr_t lua_prev;

static void lua_line_hook(lua_State *L, lua_Debug *ar) {
  if (!lua_getinfo(L, "S", ar)) return;
  uintptr_t h = ((uintptr_t)ar->source * 2654435761u) ^ ((uintptr_t)ar->currentline * 40503u);
  lua_counters[(h ^ lua_prev) % LUA_COUNTERS]++;
  lua_prev = h >> 1;
}

static lua_State *fuzz_L;

/* LuaJIT keeps its heap in memory it maps itself, which LeakSanitizer does
 * not scan: a malloc'd buffer only a Lua object points to (lua-cjson's
 * strbuf of a cjson.new() instance) looks leaked although it is live. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
  return "leak:strbuf_init\nleak:libluajit-5.1.so\nleak:cjson.so\n";
}

/* Loads fuzz/lua/<name>.lua (its function in the registry). */
static void fuzz_lua_init(const char *name) {
  if (fuzz_L) return;
  lua_State *L = luaL_newstate();
  FUZZ_CHECK(L, "luaL_newstate");
  luaL_openlibs(L);
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  /* IPK_SOURCE_DIR: the tree whose Lua is fuzzed (default: this one). */
  const char *root = getenv("IPK_SOURCE_DIR");
  if (!root || !*root) root = IPK_SOURCE_DIR;
  setenv("IPK_FUZZ_ROOT", root, 1);   /* for harness scripts (fixtures path) */
  char code[4096];
  snprintf(code, sizeof code,
           "package.path = '%s/scripts/?.lua;%s/scripts/?/init.lua;%s/bindings/lua/?.lua;"
           "%s/bindings/lua/?/init.lua;%s/fuzz/lua/?.lua;' .. package.path",
           root, root, root, root, IPK_SOURCE_DIR);
  FUZZ_CHECK(luaL_dostring(L, code) == 0, "package.path: %s", lua_tostring(L, -1));
  char path[1024];
  snprintf(path, sizeof path, "%s/fuzz/lua/%s.lua", IPK_SOURCE_DIR, name);
  if (luaL_loadfile(L, path) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
    fprintf(stderr, "fuzz: loading %s: %s\n", path, lua_tostring(L, -1));
    abort();
  }
  FUZZ_CHECK(lua_isfunction(L, -1), "%s must return a function", path);
  lua_setfield(L, LUA_REGISTRYINDEX, "ipk.fuzz.harness");
  lua_sethook(L, lua_line_hook, LUA_MASKLINE, 0);
  fuzz_L = L;
}

static void fuzz_lua_run(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_L;
  lua_getfield(L, LUA_REGISTRYINDEX, "ipk.fuzz.harness");
  lua_pushlstring(L, (const char *)data, size);
  lua_prev = 0;
  if (lua_pcall(L, 1, 0, 0) != 0) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "fuzz: invariant failed (Lua): %s\n", msg ? msg : "(non-string error)");
    abort();
  }
  /* Keep the heap from growing across runs: collect now and then. */
  static unsigned runs;
  if (++runs % 256 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
}

#endif
