-- `open(path, data, chunk size, append)`: checks that `path` can receive a file and registers
-- the staged data in `pending`. An append whose old file has the same chunk size keeps the old
-- placement, so its chunks can be copied server-side. Reply: `{'ok', member, old entry or ''}`.
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
    if ARGV[5] == '1' and e.data ~= '' and not e.off and e.cs == tonumber(ARGV[4]) then place = e.place end
  else
    v = ''
  end
  local member = ARGV[3] .. '|' .. place
  call('ZADD', P .. 'pending', num(now_ms()), member)
  return {'ok', member, v}
end
