-- `detach(path)`: unlinks directory `path` from the tree at once and records it in `trash`,
-- whose purge then deletes its contents. `{'ok', dir id}`.
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
