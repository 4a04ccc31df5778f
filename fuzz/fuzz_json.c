/* Harness: ipk.json.decode and ipk.dagjson.decode (lua-cjson underneath)
 * through embedded LuaJIT; the invariants are in fuzz/lua/json.lua. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_lua_init("json");
  fuzz_lua_run(data, size);
  return 0;
}
