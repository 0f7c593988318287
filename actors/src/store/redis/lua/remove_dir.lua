-- `remove_dir(path)`: removes an empty directory. `{'ok'}`.
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
