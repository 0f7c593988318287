-- Helpers shared by every script. Entries follow the grammar of `Entry` in `keys.rs`.
-- ARGV[1] is `<metadata prefix>|<epoch>` (a namespace cannot contain `|`). Every script but
-- `init` (which passes no epoch) first checks that `meta` still holds the epoch the store found
-- at connect: if not, the server lost the namespace's data, and nothing runs.
local P, E = string.match(ARGV[1], '^([^|]*)|(.*)$')
if E ~= '' and redis.call('HGET', KEYS[1], 'epoch') ~= E then return {'err', 'EPOCH', ''} end
local function fail(code, key) error({mavfs = code, key = key or ''}) end
local function call(cmd, key, ...)
  local r = redis.pcall(cmd, key, ...)
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'WRONGTYPE', 1, true) then fail('WRONGTYPE', key) end
    error(r)
  end
  return r
end
local function num(n) return string.format('%.0f', n) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function dkey(id) return P .. 'd:' .. id end
local function parse(v, key, name)
  local k = string.sub(v, 1, 1)
  if k == 'd' then
    local id, m = string.match(v, '^d/(%d+)/(%d+)$')
    if id then return {kind = 'd', id = id, mtime = tonumber(m)} end
  elseif k == 'f' then
    local size, m, cs, data, place = string.match(v, '^f/(%d+)/(%d+)/(%d+)/([^/]*)/([^/]*)$')
    if size then
      return {kind = 'f', size = tonumber(size), mtime = tonumber(m), cs = tonumber(cs),
              data = data, place = place}
    end
  elseif k == 'p' then
    -- A packed file: `size` bytes at `off` in chunk 0 of pack `data`, placed by its own id.
    local size, m, off, data = string.match(v, '^p/(%d+)/(%d+)/(%d+)/([^/]+)$')
    if size then
      return {kind = 'f', size = tonumber(size), mtime = tonumber(m), cs = 0, data = data,
              place = data, off = tonumber(off)}
    end
  end
  fail('CORRUPT', key .. ' field ' .. name)
end
local function encode(e)
  if e.kind == 'd' then return 'd/' .. e.id .. '/' .. num(e.mtime) end
  if e.off then
    return 'p/' .. num(e.size) .. '/' .. num(e.mtime) .. '/' .. num(e.off) .. '/' .. e.data
  end
  return 'f/' .. num(e.size) .. '/' .. num(e.mtime) .. '/' .. num(e.cs) .. '/' .. e.data .. '/' .. e.place
end
local function get(id, name)
  local k = dkey(id)
  local v = call('HGET', k, name)
  if not v then return nil end
  return parse(v, k, name)
end
local function split(path)
  local t = {}
  for n in string.gmatch(path, '[^/]+') do t[#t + 1] = n end
  return t
end
-- Resolves the first n names as directories from the root: ids[i] is the id of names[i].
local function walk(names, n, which)
  local ids = {[0] = '0'}
  for i = 1, n do
    local e = get(ids[i - 1], names[i])
    if not e then fail('ENOENT', which) end
    if e.kind ~= 'd' then fail('ENOTDIR', which) end
    ids[i] = e.id
  end
  return ids
end
-- Sets the mtime of the directory at depth i of a resolved path (0 is the root).
local function touch_dir(names, ids, i, now)
  if i == 0 then call('HSET', P .. 'meta', 'mtime', num(now)) return end
  local e = get(ids[i - 1], names[i])
  if e and e.kind == 'd' then
    e.mtime = now
    call('HSET', dkey(ids[i - 1]), names[i], encode(e))
  end
end
local function stat_add(field, delta)
  if delta ~= 0 then call('HINCRBY', P .. 'stats', field, num(delta)) end
end
-- The pending member of a file's data once it is dead, or '' when it has none. Called once
-- for each entry that goes: a packed file gives up its share of its pack, and the last one out
-- makes the pack dead (one chunk).
local function dead_member(e)
  if e.kind ~= 'f' or e.data == '' then return '' end
  if e.off then
    if call('HINCRBY', P .. 'packs', e.data, -1) > 0 then return '' end
    call('HDEL', P .. 'packs', e.data)
    return e.data .. '|' .. e.data .. '|1'
  end
  local chunks = 0
  if e.size > 0 then chunks = math.ceil(e.size / e.cs) end
  return e.data .. '|' .. e.place .. '|' .. num(chunks)
end
-- Runs f(...) and returns its result, or nil and the {mavfs = code, key = key} of its fail();
-- any other error goes on up.
local function try(f, ...)
  local ok, res = pcall(f, ...)
  if ok then return res end
  if type(res) == 'table' and res.mavfs then return nil, res end
  error(res, 0)
end
-- Appends one file's answer to a batch reply: '' and its value, or its failure's code and key.
local function answer(out, value, err)
  if err then
    out[#out + 1] = err.mavfs
    out[#out + 1] = err.key
  else
    out[#out + 1] = ''
    out[#out + 1] = value
  end
end
-- The directory at `path`, resolved once per batch: `cache` maps a path to what resolving it
-- gave, {names, ids, key} (ids[#names] is the directory's id, key its hash) or {err}, raised
-- again on every use.
local function dir_at(path, cache)
  local hit = cache[path]
  if not hit then
    local names = split(path)
    local ids, err = try(walk, names, #names)
    hit = {names = names, ids = ids, key = ids and dkey(ids[#names]), err = err}
    cache[path] = hit
  end
  if hit.err then error(hit.err) end
  return hit
end
