-- busted helper: paths, fixtures location, temp $IPK_HOME, running ipkrun.
package.path = "bindings/lua/?.lua;scripts/?.lua;scripts/?/init.lua;spec/?.lua;" .. package.path
local support = require "support.util"
_G.support = support
