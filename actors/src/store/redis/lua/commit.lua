-- `commit(path, member, size, chunk size, data, place)`: makes staged data the file at `path`
-- and retires the data it replaces. Idempotent: run again after it succeeded, it finds its data
-- already in place. Reply: `{'ok', dead member or ''}`.
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
