-- `mkdir(path, parents)`: `{'ok'}`.
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
