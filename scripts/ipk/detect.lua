--- ipk.detect: format/framework detection and table statistics.
-- A thin layer over core/include/ipk/detect.h and table.h: the bytes are
-- judged in C (signatures, headers, footers, the CSV tokenizer), on the
-- thread pool when called inside a task. This module adds only what is
-- about directories (SavedModel, tfjs, image folders), which is layout.
-- Expected failures return nil, msg, name; misuse raises.
local core = require "ipk.core"
local sched = require "ipk.sched"
local json = require "ipk.json"
local fs = require "ipk.fs"
local ffi, lib = core.ffi, core.lib

local type, tonumber, ipairs, error = type, tonumber, ipairs, error

local M = {}

-- Buffers that C jobs point into, kept alive while the job runs.
local anchors = {} -- luacheck: ignore 241 (written, never read: it only anchors)

local function run_job(fn, job, path)
  local pathbuf = ffi.new("char[?]", #path + 1, path)
  job.path = pathbuf
  anchors[job] = pathbuf
  local rc
  if sched.in_task() then rc = sched.job(fn, job) else rc = fn(job) end
  anchors[job] = nil
  return rc
end

--- Detect one regular file from its content.
-- @return {format, framework, kind, size, info = table} or nil, msg, name
function M.file(path)
  if type(path) ~= "string" then error("detect.file: path string expected", 2) end
  local job = ffi.new("ipk_detect_job_t")
  local rc = run_job(lib.ipk_detect_job, job, path)
  if rc ~= 0 then return core.check(rc, job.eb) end
  local info = json.decode(ffi.string(job.out.info)) or {}
  local r = { format = ffi.string(job.out.format), framework = ffi.string(job.out.framework),
              kind = ffi.string(job.out.kind), size = tonumber(job.out.size), info = info }
  lib.ipk_detect_free(job.out)
  return r
end

-- Run the C statistics job; fn(job) turns the result into the return value
-- before the C memory is freed.
local function stats_job(path, delim, fn, records)
  local job = ffi.new("ipk_table_stats_job_t")
  job.delim = delim and delim:byte() or 0
  job.records = records or 0
  job.want_json = 1
  local rc = run_job(lib.ipk_table_stats_job, job, path)
  if rc ~= 0 then return core.check(rc, job.eb) end
  local ok, r = pcall(fn, job)
  lib.ipk_table_json_free(job.json)
  lib.ipk_table_stats_free(job.out)
  if not ok then error(r, 0) end
  return r
end

-- The summary from the struct, the large values as json.raw texts.
local function raw_result(job)
  local s, j = job.out, job.json
  local function seg(k) return json.raw(ffi.string(j.text + j[k][0], j[k][1] - j[k][0])) end
  local r = { num_rows = tonumber(s.rows), num_columns = tonumber(s.ncols), columns = seg("columns"),
              column_stats = seg("column_stats"), dtypes = seg("dtypes"), missing = seg("missing") }
  if s.delim ~= 0 then r.delimiter, r.bom = string.char(s.delim), s.bom ~= 0 end
  return r
end

--- Statistics of a CSV/TSV file (delim nil = sniffed), IPFS Kit key names,
-- computed once in C (core/include/ipk/table.h: ipk_table_stats_json) and
-- kept as C wrote them: the per-column values (columns, column_stats,
-- dtypes, missing) are ipk.json.raw texts, never Lua tables, so a table
-- with a million columns costs its JSON text and nothing more. Encoding the
-- result with ipk.json (or ipk.dagjson) gives the same text as encoding
-- table_stats(path).
-- @return {num_rows, num_columns, delimiter, bom, columns, column_stats, dtypes, missing} or nil, msg, name
function M.table_stats_raw(path, delim)
  if type(path) ~= "string" then error("detect.table_stats_raw: path string expected", 2) end
  return stats_job(path, delim, function(job)
    return raw_result(job)
  end)
end

--- Statistics of JSON records (ipk_table_records_stats_file): a JSON array
-- of objects, or JSON Lines when jsonl; same shape and raw values as
-- table_stats_raw without delimiter and bom. A JSON file that is one value
-- and not a list gives {num_rows = 1, type = "object"}.
-- @return stats or nil, msg, name
function M.records_stats_raw(path, jsonl)
  if type(path) ~= "string" then error("detect.records_stats_raw: path string expected", 2) end
  return stats_job(path, nil, function(job)
    if job.out.not_records ~= 0 then return { num_rows = 1, type = "object" } end
    return raw_result(job)
  end, jsonl and 2 or 1)
end

--- Statistics of a CSV/TSV file (delim nil = sniffed) as Lua tables: the
-- same values as table_stats_raw, decoded.
-- @return {num_rows, num_columns, columns, dtypes, missing, column_stats, delimiter, bom} or nil, msg, name
function M.table_stats(path, delim)
  if type(path) ~= "string" then error("detect.table_stats: path string expected", 2) end
  return stats_job(path, delim, function(job)
    local r = assert(json.decode(ffi.string(job.json.text, job.json.len)))
    json.array(r.columns)
    json.array(r.column_stats)
    return r
  end)
end

local SPLIT_KEYS = { "columns", "column_stats", "dtypes", "missing" }
local split_keys = ffi.new("const char *[4]", SPLIT_KEYS)

--- Recorded statistics (JSON text) back as a table without decoding the
-- per-column values in Lua: columns, column_stats, dtypes and missing are
-- cut out in C (ipk_table_json_split) and returned as ipk.json.raw texts;
-- the rest is decoded.
-- @return stats table or nil, msg, name
function M.stats_from_json(text)
  if type(text) ~= "string" then error("detect.stats_from_json: string expected", 2) end
  local seg, rest, rlen, eb = ffi.new("size_t[8]"), ffi.new("char *[1]"), ffi.new("size_t[1]"), core.errbuf()
  local rc = lib.ipk_table_json_split(text, #text, split_keys, 4, seg, rest, rlen, eb)
  if rc ~= 0 then return core.check(rc, eb) end
  local small = ffi.string(rest[0], rlen[0])
  lib.ipk_table_free(rest[0])
  local st, err, name = json.decode(small)
  if st == nil then return nil, err, name end
  for k, key in ipairs(SPLIT_KEYS) do
    local a, b = tonumber(seg[2 * k - 2]), tonumber(seg[2 * k - 1])
    if b > a then st[key] = json.raw(text:sub(a + 1, b)) end
  end
  return st
end

--- Record index of a CSV/TSV file: header range and per-record offsets.
-- @param key_col 0-based column whose values are hashed for stratification, or nil
-- @return {header = {start, stop}, rows, offsets = uint64_t* (rows+1), keys = uint64_t*|nil, raw}
function M.table_index(path, delim, key_col)
  local job = ffi.new("ipk_table_index_job_t")
  job.delim = delim and delim:byte() or 0
  job.key_col = key_col or -1
  local rc = run_job(lib.ipk_table_index_job, job, path)
  if rc ~= 0 then return core.check(rc, job.eb) end
  local own = ffi.gc(ffi.new("ipk_table_index_t[1]", job.out), lib.ipk_table_index_free)
  local x = own[0]
  return { header = { tonumber(x.header_start), tonumber(x.header_end) }, rows = tonumber(x.rows),
           offsets = x.offsets, keys = x.keys ~= nil and x.keys or nil, raw = own }
end

--- Regular files under dir (recursive, symlinks not followed), relative
-- paths sorted bytewise, with sizes. Symlinks and special files are
-- reported in `other` (the importer rejects them).
-- @return files, sizes, other | nil, msg, name (dir unreadable)
function M.walk(dir)
  local entries, err, name = fs.walk(dir)
  if not entries then return nil, err, name end
  local files, sizes, other = {}, {}, {}
  for _, e in ipairs(entries) do
    if e.type == "file" then files[#files + 1] = e.path; sizes[e.path] = e.size
    elseif e.type ~= "dir" then other[#other + 1] = e.path end
  end
  return files, sizes, other
end

--- Detect a file or a directory. A directory is a model when its layout
-- says so (SavedModel: saved_model.pb + variables/; tfjs: model.json with
-- a weights manifest), an image folder when every file is an image
-- (classes = first-level subfolders), else a dataset of its files.
-- @return {format, framework, kind, files = {{path, size, format, kind, info}}, info}
function M.path(path)
  if not fs.is_dir(path) then
    local r, err, name = M.file(path)
    if not r then return nil, err, name end
    return r
  end
  local files, sizes, other = M.walk(path)
  if not files then return nil, sizes, other end
  if #other > 0 then
    return nil, path .. "/" .. other[1] .. ": not a regular file or directory (symlinks are not imported)", "EUNSUPP"
  end
  local out, byformat = {}, {}
  for _, f in ipairs(files) do
    local d, err, name = M.file(path .. "/" .. f)
    if not d then return nil, err, name end
    d.path, d.size = f, sizes[f]
    out[#out + 1] = d
    byformat[d.format] = (byformat[d.format] or 0) + 1
  end
  local r = { files = out, formats = byformat, kind = "dataset", framework = "", format = "directory", info = {} }
  local by = {}
  for _, d in ipairs(out) do by[d.path] = d end
  local sm = by["saved_model.pb"]
  if sm and sm.format == "tf-savedmodel-pb" and fs.is_dir(path .. "/variables") then
    r.format, r.framework, r.kind = "tf-savedmodel", "tensorflow", "model"
    r.info = { tags = sm.info.tags, tensorflow_version = sm.info.tensorflow_version }
    return r
  end
  for _, d in ipairs(out) do
    if d.format == "tfjs-model" then
      r.format, r.framework, r.kind = "tfjs", "tensorflow.js", "model"
      r.info = { model_json = d.path }
      return r
    end
  end
  if #out > 0 and byformat["tfjs-manifest"] and (byformat["tfjs-manifest"] + (byformat.binary or 0)) == #out then
    r.format, r.framework, r.kind = "tfjs", "tensorflow.js", "model"
    return r
  end
  local images = 0
  for _, d in ipairs(out) do if d.kind == "image" then images = images + 1 end end
  if #out > 0 and images == #out then r.format, r.kind = "images", "dataset" end
  return r
end

return M
