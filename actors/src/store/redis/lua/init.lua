-- `init(layout, check keys...)`: records the layout and root mtime on first use, checks the
-- layout version and the types of the fixed keys. Reply: `{'ok'}`, or `{'ok', 'LAYOUT', found}`.
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
