-- `commit_files(chunk size, parent, name, member, size, data, ...)`: `commit` for each file of
-- a batch, each on its own (one file's refusal leaves the others committed); each path comes as
-- its parent directory and its name, and each file's data is placed by its own id. Reply:
-- `{'ok', {code, dead member or key, ...}}`, a pair per file: code `''` and the dead member (or
-- `''`) when committed, else an error code and the key it names.
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
