-- `rename(from, to)`: moves one entry between two directory hashes. `{'ok', dead member or ''}`.
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
