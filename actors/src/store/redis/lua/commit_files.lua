-- `commit_files(chunk size, parent, name, member, size, data, offset, ...)`: `commit` for each
-- file of a batch, each on its own (one file's refusal leaves the others committed); each path
-- comes as its parent directory and its name. A file with an offset is packed: its bytes are at
-- that offset in pack `data`, which `packs` then counts it in; a file without one has data of
-- its own, placed by its id; an empty file has none (member, data and offset `''`). Reply:
-- `{'ok', {code, dead member or key, ...}}`, a pair per file: code `''` and the dead member (or
-- `''`) when committed, else an error code and the key it names.
local function main()
  local pending = P .. 'pending'
  local now = now_ms()
  local stamp = '/' .. num(now) .. '/'
  local tail = stamp .. ARGV[2] .. '/'
  -- The files of a pack share its member: each distinct member is looked up once.
  local members, index = {}, {}
  for i = 5, #ARGV, 6 do
    if not index[ARGV[i]] then
      members[#members + 1] = ARGV[i]
      index[ARGV[i]] = #members
    end
  end
  local scores = call('ZMSCORE', pending, unpack(members))
  local out, done, used = {}, {}, {}
  -- Files this batch put in each pack and `packs` does not count yet.
  local counts = {}
  local function count(data)
    if counts[data] then
      call('HINCRBY', P .. 'packs', data, counts[data])
      counts[data] = nil
    end
  end
  local cache, touched = {}, {}
  local files, bytes = 0, 0
  -- Per directory hash: each name of the batch as it stands (false: none), read in one HMGET,
  -- then as this batch sets it; what it sets goes in one HSET at the end (`sets`, by key in
  -- `order`). A batch mostly writes one directory.
  local entries, sets, order = {}, {}, {}
  do
    local wanted = {}
    for i = 3, #ARGV, 6 do
      local dir = try(dir_at, ARGV[i], cache)
      if dir then
        local k = dir.key
        if not wanted[k] then
          wanted[k] = {}
          order[#order + 1] = k
        end
        table.insert(wanted[k], ARGV[i + 1])
      end
    end
    for _, k in ipairs(order) do
      local values = call('HMGET', k, unpack(wanted[k]))
      local e = {}
      for j, name in ipairs(wanted[k]) do e[name] = values[j] end
      entries[k] = e
      sets[k] = {}
    end
  end
  local function set(k, name, v)
    entries[k][name] = v
    local s = sets[k]
    s[#s + 1] = name
    s[#s + 1] = v
  end
  local function commit_one(i)
    local dir = dir_at(ARGV[i], cache)
    local k = dir.key
    local name, size, data, off = ARGV[i + 1], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
    local v = entries[k][name]
    local old
    if v then
      old = parse(v, k, name)
      if old.kind == 'd' then fail('EISDIR') end
    end
    if data == '' then
      -- An empty file: no data, as `touch` makes one.
      set(k, name, 'f/0' .. stamp .. '0//')
    elseif not scores[index[ARGV[i + 2]]] then
      if old and old.data == data and (old.off and num(old.off) or '') == off then return '' end
      fail('EXPIRED')
    elseif off == '' then
      set(k, name, 'f/' .. size .. tail .. data .. '/' .. data)
    else
      set(k, name, 'p/' .. size .. stamp .. off .. '/' .. data)
      counts[data] = (counts[data] or 0) + 1
    end
    if data ~= '' and not used[data] then
      used[data] = true
      done[#done + 1] = ARGV[i + 2]
    end
    local dead = ''
    if old then
      bytes = bytes + tonumber(size) - old.size
      -- It may be in a pack of this batch (this file's, even): `packs` must count it first.
      if old.off then count(old.data) end
      dead = dead_member(old)
      if dead ~= '' then call('ZADD', pending, num(now), dead) end
    else
      files = files + 1
      bytes = bytes + tonumber(size)
    end
    if not touched[ARGV[i]] then
      touched[ARGV[i]] = true
      touch_dir(dir.names, dir.ids, #dir.names, now)
    end
    return dead
  end
  -- The entries, counters, `packs` and `pending` follow what was committed, even if an
  -- unexpected error stops the loop.
  local ok, res = pcall(function()
    for i = 3, #ARGV, 6 do answer(out, try(commit_one, i)) end
  end)
  for _, k in ipairs(order) do
    local s = sets[k]
    for j = 1, #s, 500 do call('HSET', k, unpack(s, j, math.min(j + 499, #s))) end
  end
  for data in pairs(counts) do count(data) end
  if #done > 0 then call('ZREM', pending, unpack(done)) end
  stat_add('files', files)
  stat_add('bytes', bytes)
  if not ok then error(res, 0) end
  return {'ok', out}
end
