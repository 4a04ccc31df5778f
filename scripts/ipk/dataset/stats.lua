--- ipk.dataset.stats: what `dataset add` records about a dataset version:
-- format and statistics with IPFS Kit's key names (num_rows, num_columns,
-- size_bytes, columns, dtypes). Formats are detected from content
-- (ipk.detect, in C); IDX image/label folders (Fashion-MNIST) keep their
-- train/test splits.
local detect = require "ipk.detect"
local json = require "ipk.json"
local idxmod = require "ipk.dataset.idx"
local fs = require "ipk.fs"

local M = {}

-- Regular files directly in dir (symlinks not followed), sorted bytewise,
-- with their sizes. @return names, sizes | nil, msg
local function list_files(dir)
  local entries, err, name = fs.walk(dir, { depth = 1 })
  if not entries then return nil, err, name end
  local out, sizes = {}, {}
  for _, e in ipairs(entries) do
    if e.type == "file" then
      out[#out + 1] = e.path
      sizes[e.path] = e.size
    end
  end
  return out, sizes
end

-- Pair IDX files into splits: PREFIX-images-idx3-ubyte[.gz] + PREFIX-labels-idx1-ubyte[.gz].
local function idx_splits(dir, files)
  local splits, names = {}, {}
  for _, f in ipairs(files) do
    local prefix, what = f:match("^(.-)%-(%a+)%-idx%d%-ubyte")
    if prefix and (what == "images" or what == "labels") then
      local name = (prefix == "t10k" or prefix == "test") and "test" or prefix
      if not splits[name] then splits[name] = {}; names[#names + 1] = name end
      splits[name][what] = dir .. "/" .. f
    end
  end
  table.sort(names)
  return splits, names
end

--- Statistics of an IDX image/label split, IPFS Kit key names where they exist.
local function idx_stats(images, labels, classes)
  local counts = {}
  for i = 0, classes - 1 do counts[i + 1] = 0 end
  local y = labels.data
  for i = 0, labels.count - 1 do
    local v = y[i]
    if v >= classes then return nil, labels.path .. ": label " .. v .. " at row " .. i .. " is >= " .. classes, "EFORMAT" end
    counts[v + 1] = counts[v + 1] + 1
  end
  local shape = {}
  for i = 2, #images.dims do shape[#shape + 1] = images.dims[i] end
  return { num_rows = images.dims[1], sample_shape = json.array(shape), dtype = "uint8",
           label_counts = json.array(counts), num_classes = classes }
end

-- JSON / JSON Lines records: statistics computed in C (ipk.detect,
-- core/include/ipk/table.h: ipk_table_records_stats_file) in one pass over
-- the file; a bad line is an error naming file, line and offset.
local function json_stats(path, format)
  return detect.records_stats_raw(path, format == "jsonl")
end

--- Statistics of one file, by its detected format.
-- @return stats table (always with format and size_bytes) or nil, msg
function M.file_stats(path, det)
  local st, err, name
  local f = det.format
  if f == "csv" or f == "tsv" then
    st, err, name = detect.table_stats_raw(path, det.info.delimiter)
  elseif f == "json" or f == "jsonl" then
    st, err, name = json_stats(path, f)
  else
    st = {}
    for k, v in pairs(det.info or {}) do st[k] = v end
  end
  if not st then return nil, err, name end
  st.format = f
  st.size_bytes = det.size
  return st
end

-- Statistics of a directory from its per-file detection.
local function dir_stats(path, det)
  local st = { format = det.format, num_files = #det.files, size_bytes = 0, formats = det.formats }
  for _, d in ipairs(det.files) do st.size_bytes = st.size_bytes + d.size end
  if det.format == "images" then
    local classes, sizes, fmts = {}, {}, {}
    local wmin, wmax, hmin, hmax
    for _, d in ipairs(det.files) do
      local cls = d.path:match("^([^/]+)/")
      if cls then classes[cls] = (classes[cls] or 0) + 1 end
      fmts[d.format] = (fmts[d.format] or 0) + 1
      local w, h = d.info.width, d.info.height
      if w and h then
        local key = w .. "x" .. h
        sizes[key] = (sizes[key] or 0) + 1
        wmin, wmax = math.min(wmin or w, w), math.max(wmax or w, w)
        hmin, hmax = math.min(hmin or h, h), math.max(hmax or h, h)
      end
    end
    st.num_images = #det.files
    st.num_rows = #det.files
    st.image_formats = fmts
    st.sizes = sizes
    st.width = { min = wmin, max = wmax }
    st.height = { min = hmin, max = hmax }
    if next(classes) then
      st.classes = classes
      local n = 0
      for _ in pairs(classes) do n = n + 1 end
      st.num_classes = n
    end
    return st
  end
  local files, rows = {}, 0
  for _, d in ipairs(det.files) do
    local one, err, name = M.file_stats(path .. "/" .. d.path, d)
    if not one then return nil, err, name end
    one.path = d.path
    one.column_stats = nil
    files[#files + 1] = one
    if type(one.num_rows) == "number" then rows = rows + one.num_rows end
  end
  st.files = json.array(files)
  st.num_rows = rows
  local only
  for f in pairs(det.formats) do only = only == nil and f or false end
  if only then st.format = only end
  return st
end

--- Measure a file or directory as a dataset: IDX image/label folders by
-- split, other folders per file, files by their detected format.
-- @param path file or directory (exists); dir: whether it is a directory
-- @param name the dataset name (for messages); args {classes=10}
-- @return stats, format, splits ({split = {images=path, labels=path}}) or nil, msg
function M.measure(path, dir, name, args)
  local stats, format, splits
  local files, sizes = {}, {}
  if dir then
    files, sizes = list_files(path)
    if not files then return nil, "dataset " .. name .. ": " .. tostring(sizes), "EIO" end
  end
  local snames
  if dir then splits, snames = idx_splits(path, files) end
  if dir and #snames > 0 then
    format = "idx"
    stats = { format = "idx", num_files = #files, splits = {}, num_rows = 0, size_bytes = 0 }
    local classes = args.classes or 10
    for _, sname in ipairs(snames) do
      local s = splits[sname]
      if not (s.images and s.labels) then
        return nil, "dataset " .. name .. ": split '" .. sname .. "' lacks images or labels", "EFORMAT"
      end
      local im, err, ename = idxmod.load(s.images)
      if not im then return nil, err, ename end
      local lb; lb, err, ename = idxmod.load(s.labels)
      if not lb then return nil, err, ename end
      if #im.dims < 2 or #lb.dims ~= 1 or im.dims[1] ~= lb.dims[1] then
        return nil, ("dataset %s: split '%s': %d images but %d labels"):format(name, sname, im.dims[1], lb.dims[1] or -1), "EFORMAT"
      end
      local st; st, err, ename = idx_stats(im, lb, classes)
      if not st then return nil, err, ename end
      stats.splits[sname] = st
      stats.num_rows = stats.num_rows + st.num_rows
      stats.sample_shape = st.sample_shape
    end
    for _, f in ipairs(files) do stats.size_bytes = stats.size_bytes + sizes[f] end
  else
    splits = {}
    local det, err, ename = detect.path(path)
    if not det then return nil, "dataset " .. name .. ": " .. tostring(err), ename end
    if dir then stats, err, ename = dir_stats(path, det)
    else stats, err, ename = M.file_stats(path, det) end
    if not stats then return nil, "dataset " .. name .. ": " .. tostring(err), ename end
    format = stats.format
  end
  return stats, format, splits
end

return M
