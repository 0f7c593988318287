-- `touch(path)`: `{'ok'}`.
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
