-- FFI declarations (filled by the module owner); see core/include/ipk/*.h
return [[
]]
