-- `remove_file(path[, expected])`: `{'ok', dead member or ''}`. With `expected`
-- (`<size>/<mtime>/<data>`), the file is removed only if it is still that version, else `CHANGED`.
local function main()
  local names = split(ARGV[2])
  local n = #names
  if n == 0 then fail('EISDIR') end
  local ids = walk(names, n - 1)
  local e = get(ids[n - 1], names[n])
  if not e then fail('ENOENT') end
  if e.kind == 'd' then fail('EISDIR') end
  local expected = ARGV[3]
  if expected and expected ~= num(e.size) .. '/' .. num(e.mtime) .. '/' .. e.data then
    fail('CHANGED')
  end
  local now = now_ms()
  call('HDEL', dkey(ids[n - 1]), names[n])
  stat_add('files', -1)
  stat_add('bytes', -e.size)
  local dead = dead_member(e)
  if dead ~= '' then call('ZADD', P .. 'pending', num(now), dead) end
  touch_dir(names, ids, n - 1, now)
  return {'ok', dead}
end
