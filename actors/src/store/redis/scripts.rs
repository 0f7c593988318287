//! The Lua scripts: every metadata read and update, each one atomic.
//!
//! Every script gets `KEYS[1]` = the namespace's `meta` key (which routes it to the node serving
//! the metadata slot on a cluster) and `ARGV[1]` = the metadata prefix `<ns>:{<ns>}:`, and builds
//! every other metadata key from that prefix: they all share the `{<ns>}` hash tag, so they live in
//! one slot. Scripts never touch chunk keys, which live in other slots.
//!
//! A script first checks everything (resolving paths, kinds, emptiness), then writes: the checks
//! raise `{'err', code, key}` replies before any write, so a refused operation changes nothing
//! (Redis does not roll a script back). Every script carries the `allow-oom` flag, so that under
//! `maxmemory` with `noeviction` the scripts that free data (removing files) still run whole; the
//! data writes that would grow memory are chunk `SET`s, refused with OOM outside any script.
//!
//! Replies are `{'ok', ...}` or `{'err', code, key}`: `code` is an errno name (`ENOENT`,
//! `EEXIST`, `EISDIR`, `ENOTDIR`, `ENOTEMPTY`, `EBUSY`, `EINVAL`) or `EXPIRED` (staged data was
//! swept), `WRONGTYPE` or `CORRUPT` (naming the key); for `rename` the key says which path
//! (`from` or `to`) an errno is about.

use std::sync::LazyLock;

use fred::types::scripts::Script;

/// Helpers shared by every script. Entries follow [`super::keys::Entry`]'s grammar.
const PRELUDE: &str = r#"
local P = ARGV[1]
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
  end
  fail('CORRUPT', key .. ' field ' .. name)
end
local function encode(e)
  if e.kind == 'd' then return 'd/' .. e.id .. '/' .. num(e.mtime) end
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
-- The pending member of a file's data once it is dead, or '' when it has none.
local function dead_member(e)
  if e.kind ~= 'f' or e.data == '' then return '' end
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
-- gave, {names, ids} (ids[#names] is the directory's id) or {err}, raised again on every use.
local function dir_at(path, cache)
  local hit = cache[path]
  if not hit then
    local names = split(path)
    local ids, err = try(walk, names, #names)
    hit = {names = names, ids = ids, err = err}
    cache[path] = hit
  end
  if hit.err then error(hit.err) end
  return hit
end
"#;

/// Runs `main` and turns a `fail` into an `{'err', code, key}` reply.
const EPILOGUE: &str = r#"
local ok, res = pcall(main)
if ok then return res end
if type(res) == 'table' then
  if res.mavfs then return {'err', res.mavfs, res.key} end
  return res
end
return redis.error_reply(tostring(res))
"#;

/// `init(layout, check keys...)`: records the layout and root mtime on first use, checks the
/// layout version and the types of the fixed keys. Reply: `{'ok'}`, or `{'ok', 'LAYOUT', found}`.
const INIT: &str = r#"
local function main()
  local expect = {meta = 'hash', stats = 'hash', pending = 'zset', trash = 'set', ['d:0'] = 'hash'}
  for suffix, kind in pairs(expect) do
    local t = redis.call('TYPE', P .. suffix)['ok']
    if t ~= 'none' and t ~= kind then fail('WRONGTYPE', P .. suffix) end
  end
  local layout = call('HGET', P .. 'meta', 'layout')
  if layout and layout ~= ARGV[2] then return {'ok', 'LAYOUT', layout} end
  if not layout then
    call('HSET', P .. 'meta', 'layout', ARGV[2])
    call('HSETNX', P .. 'meta', 'mtime', num(now_ms()))
  end
  return {'ok'}
end
"#;

/// `stat(path)`: `{'ok', entry}`; the root is a directory entry with id 0.
const STAT: &str = r#"
local function main()
  local names = split(ARGV[2])
  local n = #names
  if n == 0 then
    local m = call('HGET', P .. 'meta', 'mtime') or '0'
    return {'ok', 'd/0/' .. m}
  end
  local ids = walk(names, n - 1)
  local k = dkey(ids[n - 1])
  local v = call('HGET', k, names[n])
  if not v then fail('ENOENT') end
  parse(v, k, names[n])
  return {'ok', v}
end
"#;

/// `list(path, count)`: `{'ok', dir id, cursor, {name, entry, ...}}`; cursor `0` means that was
/// all, else the caller goes on with `list_page`.
const LIST: &str = r#"
local function main()
  local names = split(ARGV[2])
  local ids = walk(names, #names)
  local id = ids[#names]
  local k = dkey(id)
  if call('HLEN', k) <= tonumber(ARGV[3]) then return {'ok', id, '0', call('HGETALL', k)} end
  local r = call('HSCAN', k, '0', 'COUNT', ARGV[3])
  return {'ok', id, r[1], r[2]}
end
"#;

/// `list_page(dir id, cursor, count)`: `{'ok', cursor, {name, entry, ...}}`.
const LIST_PAGE: &str = r#"
local function main()
  local r = call('HSCAN', dkey(ARGV[2]), ARGV[3], 'COUNT', ARGV[4])
  return {'ok', r[1], r[2]}
end
"#;

/// `mkdir(path, parents)`: `{'ok'}`.
const MKDIR: &str = r#"
local function main()
  local names = split(ARGV[2])
  local n = #names
  local parents = ARGV[3] == '1'
  if n == 0 then
    if parents then return {'ok'} end
    fail('EEXIST')
  end
  local now = now_ms()
  local first
  local ids
  if parents then
    ids = {[0] = '0'}
    first = 1
    while first <= n do
      local e = get(ids[first - 1], names[first])
      if not e then break end
      if e.kind ~= 'd' then
        if first == n then fail('EEXIST') end
        fail('ENOTDIR')
      end
      ids[first] = e.id
      first = first + 1
    end
    if first > n then return {'ok'} end
  else
    ids = walk(names, n - 1)
    if get(ids[n - 1], names[n]) then fail('EEXIST') end
    first = n
  end
  for j = first, n do
    local id = num(call('HINCRBY', P .. 'meta', 'next', 1))
    call('HSET', dkey(ids[j - 1]), names[j], encode({kind = 'd', id = id, mtime = now}))
    ids[j] = id
  end
  stat_add('dirs', n - first + 1)
  touch_dir(names, ids, first - 1, now)
  return {'ok'}
end
"#;

/// `touch(path)`: `{'ok'}`.
const TOUCH: &str = r#"
local function main()
  local names = split(ARGV[2])
  local n = #names
  local now = now_ms()
  if n == 0 then
    call('HSET', P .. 'meta', 'mtime', num(now))
    return {'ok'}
  end
  local ids = walk(names, n - 1)
  local e = get(ids[n - 1], names[n])
  if e then
    e.mtime = now
    call('HSET', dkey(ids[n - 1]), names[n], encode(e))
    return {'ok'}
  end
  call('HSET', dkey(ids[n - 1]), names[n],
       encode({kind = 'f', size = 0, mtime = now, cs = 0, data = '', place = ''}))
  stat_add('files', 1)
  touch_dir(names, ids, n - 1, now)
  return {'ok'}
end
"#;

/// `open(path, data, chunk size, append)`: checks that `path` can receive a file and registers
/// the staged data in `pending`. An append whose old file has the same chunk size keeps the old
/// placement, so its chunks can be copied server-side. Reply: `{'ok', member, old entry or ''}`.
const OPEN: &str = r#"
local function main()
  local names = split(ARGV[2])
  local n = #names
  if n == 0 then fail('EISDIR') end
  local ids = walk(names, n - 1)
  local k = dkey(ids[n - 1])
  local v = call('HGET', k, names[n])
  local place = ARGV[3]
  if v then
    local e = parse(v, k, names[n])
    if e.kind == 'd' then fail('EISDIR') end
    if ARGV[5] == '1' and e.data ~= '' and e.cs == tonumber(ARGV[4]) then place = e.place end
  else
    v = ''
  end
  local member = ARGV[3] .. '|' .. place
  call('ZADD', P .. 'pending', num(now_ms()), member)
  return {'ok', member, v}
end
"#;

/// `commit(path, member, size, chunk size, data, place)`: makes staged data the file at `path`
/// and retires the data it replaces. Idempotent: run again after it succeeded, it finds its data
/// already in place. Reply: `{'ok', dead member or ''}`.
const COMMIT: &str = r#"
local function main()
  local names = split(ARGV[2])
  local n = #names
  if n == 0 then fail('EISDIR') end
  local pending = P .. 'pending'
  local staged = call('ZSCORE', pending, ARGV[3])
  local ids = walk(names, n - 1)
  local old = get(ids[n - 1], names[n])
  if old and old.kind == 'd' then fail('EISDIR') end
  if not staged then
    if old and old.data == ARGV[6] then return {'ok', ''} end
    fail('EXPIRED')
  end
  local now = now_ms()
  local e = {kind = 'f', size = tonumber(ARGV[4]), mtime = now, cs = tonumber(ARGV[5]),
             data = ARGV[6], place = ARGV[7]}
  call('HSET', dkey(ids[n - 1]), names[n], encode(e))
  call('ZREM', pending, ARGV[3])
  local dead = ''
  if old then
    stat_add('bytes', e.size - old.size)
    dead = dead_member(old)
    if dead ~= '' then call('ZADD', pending, num(now), dead) end
  else
    stat_add('files', 1)
    stat_add('bytes', e.size)
  end
  touch_dir(names, ids, n - 1, now)
  return {'ok', dead}
end
"#;

/// `stat_files(parent, name, ...)`: the entry of each file, for a batched read; each path comes
/// as its parent directory and its name, so that a batch in one directory resolves it once.
/// Reply: `{'ok', {code, entry or key, ...}}`, a pair per path: code `''` and the file's entry,
/// or an error code and the key it names. Directories fail with `EISDIR`.
const STAT_FILES: &str = r#"
local function main()
  local out = {}
  local cache = {}
  local function stat_one(i)
    local dir = dir_at(ARGV[i], cache)
    local k = dkey(dir.ids[#dir.names])
    local v = call('HGET', k, ARGV[i + 1])
    if not v then fail('ENOENT') end
    if string.sub(v, 1, 1) == 'd' then fail('EISDIR') end
    return v
  end
  for i = 2, #ARGV, 2 do
    answer(out, try(stat_one, i))
  end
  return {'ok', out}
end
"#;

/// `stage_files(member...)`: registers the data of a batched write in `pending`, before any of
/// its chunks exist. The destinations are checked by `commit_files`. `{'ok'}`.
const STAGE_FILES: &str = r#"
local function main()
  local now = num(now_ms())
  local args = {}
  for i = 2, #ARGV do
    args[#args + 1] = now
    args[#args + 1] = ARGV[i]
  end
  call('ZADD', P .. 'pending', unpack(args))
  return {'ok'}
end
"#;

/// `commit_files(chunk size, parent, name, member, size, data, ...)`: `commit` for each file of
/// a batch, each on its own (one file's refusal leaves the others committed); each path comes as
/// its parent directory and its name, and each file's data is placed by its own id. Reply:
/// `{'ok', {code, dead member or key, ...}}`, a pair per file: code `''` and the dead member (or
/// `''`) when committed, else an error code and the key it names.
const COMMIT_FILES: &str = r#"
local function main()
  local pending = P .. 'pending'
  local now = now_ms()
  local tail = '/' .. num(now) .. '/' .. ARGV[2] .. '/'
  local members = {}
  for i = 5, #ARGV, 5 do members[#members + 1] = ARGV[i] end
  local staged = call('ZMSCORE', pending, unpack(members))
  local out, done = {}, {}
  local cache, touched = {}, {}
  local files, bytes = 0, 0
  local function commit_one(i, j)
    local dir = dir_at(ARGV[i], cache)
    local k = dkey(dir.ids[#dir.names])
    local name, size, data = ARGV[i + 1], ARGV[i + 3], ARGV[i + 4]
    local v = call('HGET', k, name)
    local old
    if v then
      old = parse(v, k, name)
      if old.kind == 'd' then fail('EISDIR') end
    end
    if not staged[j] then
      if old and old.data == data then return '' end
      fail('EXPIRED')
    end
    call('HSET', k, name, 'f/' .. size .. tail .. data .. '/' .. data)
    done[#done + 1] = ARGV[i + 2]
    local dead = ''
    if old then
      bytes = bytes + tonumber(size) - old.size
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
  -- The counters and `pending` follow what was committed, even if an unexpected error stops
  -- the loop.
  local ok, res = pcall(function()
    local j = 0
    for i = 3, #ARGV, 5 do
      j = j + 1
      answer(out, try(commit_one, i, j))
    end
  end)
  if #done > 0 then call('ZREM', pending, unpack(done)) end
  stat_add('files', files)
  stat_add('bytes', bytes)
  if not ok then error(res, 0) end
  return {'ok', out}
end
"#;

/// `copy(from, to, data)`: checks a copy of file `from` onto `to` and registers the copy's data,
/// placed as the source's, in `pending`. Reply: `{'ok', member, source entry}`.
const COPY: &str = r#"
local function main()
  local fnames = split(ARGV[2])
  local tnames = split(ARGV[3])
  if #fnames == 0 then fail('EISDIR', 'from') end
  local fids = walk(fnames, #fnames - 1, 'from')
  local fk = dkey(fids[#fnames - 1])
  local v = call('HGET', fk, fnames[#fnames])
  if not v then fail('ENOENT', 'from') end
  local e = parse(v, fk, fnames[#fnames])
  if e.kind == 'd' then fail('EISDIR', 'from') end
  if #tnames == 0 then fail('EISDIR', 'to') end
  local tids = walk(tnames, #tnames - 1, 'to')
  local t = get(tids[#tnames - 1], tnames[#tnames])
  if t and t.kind == 'd' then fail('EISDIR', 'to') end
  local place = e.place
  if place == '' then place = ARGV[4] end
  local member = ARGV[4] .. '|' .. place
  call('ZADD', P .. 'pending', num(now_ms()), member)
  return {'ok', member, v}
end
"#;

/// `remove_file(path)`: `{'ok', dead member or ''}`.
const REMOVE_FILE: &str = r#"
local function main()
  local names = split(ARGV[2])
  local n = #names
  if n == 0 then fail('EISDIR') end
  local ids = walk(names, n - 1)
  local e = get(ids[n - 1], names[n])
  if not e then fail('ENOENT') end
  if e.kind == 'd' then fail('EISDIR') end
  local now = now_ms()
  call('HDEL', dkey(ids[n - 1]), names[n])
  stat_add('files', -1)
  stat_add('bytes', -e.size)
  local dead = dead_member(e)
  if dead ~= '' then call('ZADD', P .. 'pending', num(now), dead) end
  touch_dir(names, ids, n - 1, now)
  return {'ok', dead}
end
"#;

/// `remove_dir(path)`: removes an empty directory. `{'ok'}`.
const REMOVE_DIR: &str = r#"
local function main()
  local names = split(ARGV[2])
  local n = #names
  if n == 0 then fail('EBUSY') end
  local ids = walk(names, n - 1)
  local e = get(ids[n - 1], names[n])
  if not e then fail('ENOENT') end
  if e.kind ~= 'd' then fail('ENOTDIR') end
  if call('HLEN', dkey(e.id)) > 0 then fail('ENOTEMPTY') end
  local now = now_ms()
  call('HDEL', dkey(ids[n - 1]), names[n])
  stat_add('dirs', -1)
  touch_dir(names, ids, n - 1, now)
  return {'ok'}
end
"#;

/// `detach(path)`: unlinks directory `path` from the tree at once and records it in `trash`,
/// whose purge then deletes its contents. `{'ok', dir id}`.
const DETACH: &str = r#"
local function main()
  local names = split(ARGV[2])
  local n = #names
  if n == 0 then fail('EBUSY') end
  local ids = walk(names, n - 1)
  local e = get(ids[n - 1], names[n])
  if not e then fail('ENOENT') end
  if e.kind ~= 'd' then fail('ENOTDIR') end
  local now = now_ms()
  call('HDEL', dkey(ids[n - 1]), names[n])
  stat_add('dirs', -1)
  call('SADD', P .. 'trash', e.id)
  touch_dir(names, ids, n - 1, now)
  return {'ok', e.id}
end
"#;

/// `purge(dir id, cursor, count)`: deletes a page of entries of a detached directory (all of
/// them when it has at most `count`): its files' data becomes dead (in `pending`), its
/// subdirectories go to `trash`. The cursor walks the hash across calls, as `HSCAN` needs (a
/// sparse hash can answer an `HSCAN` from cursor 0 with nothing). When the directory is empty it
/// leaves `trash`. Reply: `{'ok', done, {dead members}, {subdirectory ids}, next cursor}`.
const PURGE: &str = r#"
local function main()
  local id = ARGV[2]
  local k = dkey(id)
  local flat
  local cursor = '0'
  if call('HLEN', k) <= tonumber(ARGV[4]) then
    flat = call('HGETALL', k)
  else
    local r = call('HSCAN', k, ARGV[3], 'COUNT', ARGV[4])
    cursor = r[1]
    flat = r[2]
  end
  local fields, dead, dirs = {}, {}, {}
  local files, bytes = 0, 0
  for i = 1, #flat, 2 do
    local e = parse(flat[i + 1], k, flat[i])
    fields[#fields + 1] = flat[i]
    if e.kind == 'd' then
      dirs[#dirs + 1] = e.id
    else
      files = files + 1
      bytes = bytes + e.size
      local m = dead_member(e)
      if m ~= '' then dead[#dead + 1] = m end
    end
  end
  local now = num(now_ms())
  for i = 1, #fields, 500 do
    call('HDEL', k, unpack(fields, i, math.min(i + 499, #fields)))
  end
  for i = 1, #dirs, 500 do
    call('SADD', P .. 'trash', unpack(dirs, i, math.min(i + 499, #dirs)))
  end
  for _, m in ipairs(dead) do call('ZADD', P .. 'pending', now, m) end
  stat_add('files', -files)
  stat_add('bytes', -bytes)
  stat_add('dirs', -#dirs)
  local done = 0
  if call('HLEN', k) == 0 then
    call('SREM', P .. 'trash', id)
    done = 1
  end
  return {'ok', done, dead, dirs, cursor}
end
"#;

/// `trash()`: `{'ok', {dir ids}}`, up to 100 of them.
const TRASH: &str = r#"
local function main()
  local r = call('SSCAN', P .. 'trash', '0', 'COUNT', '100')
  return {'ok', r[2]}
end
"#;

/// `rename(from, to)`: moves one entry between two directory hashes. `{'ok', dead member or ''}`.
const RENAME: &str = r#"
local function main()
  local fnames = split(ARGV[2])
  local tnames = split(ARGV[3])
  local fn, tn = #fnames, #tnames
  if fn == 0 then fail('EBUSY', 'from') end
  if tn == 0 then fail('EBUSY', 'to') end
  local fids = walk(fnames, fn - 1, 'from')
  local e = get(fids[fn - 1], fnames[fn])
  if not e then fail('ENOENT', 'from') end
  if ARGV[2] == ARGV[3] then return {'ok', ''} end
  if e.kind == 'd' and string.sub(ARGV[3], 1, #ARGV[2] + 1) == ARGV[2] .. '/' then
    fail('EINVAL', 'to')
  end
  local tids = walk(tnames, tn - 1, 'to')
  local t = get(tids[tn - 1], tnames[tn])
  if t then
    if e.kind == 'f' and t.kind == 'd' then fail('EISDIR', 'to') end
    if e.kind == 'd' and t.kind == 'f' then fail('ENOTDIR', 'to') end
    if t.kind == 'd' and call('HLEN', dkey(t.id)) > 0 then fail('ENOTEMPTY', 'to') end
  end
  local now = now_ms()
  call('HDEL', dkey(fids[fn - 1]), fnames[fn])
  call('HSET', dkey(tids[tn - 1]), tnames[tn], encode(e))
  local dead = ''
  if t then
    if t.kind == 'd' then
      stat_add('dirs', -1)
    else
      stat_add('files', -1)
      stat_add('bytes', -t.size)
      dead = dead_member(t)
      if dead ~= '' then call('ZADD', P .. 'pending', num(now), dead) end
    end
  end
  touch_dir(fnames, fids, fn - 1, now)
  touch_dir(tnames, tids, tn - 1, now)
  return {'ok', dead}
end
"#;

/// `claim(grace ms, limit)`: leases pending members untouched for `grace`: their score moves to
/// now, so no other sweeper takes them while this one deletes their chunks. `{'ok', {members}}`.
const CLAIM: &str = r#"
local function main()
  local now = now_ms()
  local cutoff = now - tonumber(ARGV[2])
  local ms = call('ZRANGEBYSCORE', P .. 'pending', '-inf', '(' .. num(cutoff), 'LIMIT', '0', ARGV[3])
  for _, m in ipairs(ms) do call('ZADD', P .. 'pending', num(now), m) end
  return {'ok', ms}
end
"#;

/// `heartbeat(members...)`: refreshes the members this process keeps alive, never re-adding one
/// that a sweeper already removed. `{'ok'}`.
const HEARTBEAT: &str = r#"
local function main()
  local now = num(now_ms())
  for i = 2, #ARGV do call('ZADD', P .. 'pending', 'XX', now, ARGV[i]) end
  return {'ok'}
end
"#;

/// `usage()`: `{'ok', files, dirs, bytes}`.
const USAGE: &str = r#"
local function main()
  local r = call('HMGET', P .. 'stats', 'files', 'dirs', 'bytes')
  return {'ok', r[1] or '0', r[2] or '0', r[3] or '0'}
end
"#;

/// Builds a script: the shebang with its flags, the prelude, its body and the epilogue.
fn script(flags: &str, body: &str) -> Script {
    Script::from_lua(format!("#!lua flags={flags}\n{PRELUDE}{body}{EPILOGUE}"))
}

/// Every script, built (and hashed) once per process.
pub(crate) struct Scripts {
    pub init: Script,
    pub stat: Script,
    pub list: Script,
    pub list_page: Script,
    pub mkdir: Script,
    pub touch: Script,
    pub open: Script,
    pub commit: Script,
    pub stat_files: Script,
    pub stage_files: Script,
    pub commit_files: Script,
    pub copy: Script,
    pub remove_file: Script,
    pub remove_dir: Script,
    pub detach: Script,
    pub purge: Script,
    pub trash: Script,
    pub rename: Script,
    pub claim: Script,
    pub heartbeat: Script,
    pub usage: Script,
}

impl Scripts {
    pub(crate) fn all(&self) -> [&Script; 21] {
        [
            &self.init,
            &self.stat,
            &self.list,
            &self.list_page,
            &self.mkdir,
            &self.touch,
            &self.open,
            &self.commit,
            &self.stat_files,
            &self.stage_files,
            &self.commit_files,
            &self.copy,
            &self.remove_file,
            &self.remove_dir,
            &self.detach,
            &self.purge,
            &self.trash,
            &self.rename,
            &self.claim,
            &self.heartbeat,
            &self.usage,
        ]
    }
}

/// Read-only scripts may run on an out-of-memory server; writing ones too (see the module docs).
const READ: &str = "no-writes,allow-oom";
const WRITE: &str = "allow-oom";

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    init: script(WRITE, INIT),
    stat: script(READ, STAT),
    list: script(READ, LIST),
    list_page: script(READ, LIST_PAGE),
    mkdir: script(WRITE, MKDIR),
    touch: script(WRITE, TOUCH),
    open: script(WRITE, OPEN),
    commit: script(WRITE, COMMIT),
    stat_files: script(READ, STAT_FILES),
    stage_files: script(WRITE, STAGE_FILES),
    commit_files: script(WRITE, COMMIT_FILES),
    copy: script(WRITE, COPY),
    remove_file: script(WRITE, REMOVE_FILE),
    remove_dir: script(WRITE, REMOVE_DIR),
    detach: script(WRITE, DETACH),
    purge: script(WRITE, PURGE),
    trash: script(READ, TRASH),
    rename: script(WRITE, RENAME),
    claim: script(WRITE, CLAIM),
    heartbeat: script(WRITE, HEARTBEAT),
    usage: script(READ, USAGE),
});
