-- `heartbeat(members...)`: refreshes the members this process keeps alive, never re-adding one
-- that a sweeper already removed. `{'ok'}`.
local function main()
  local now = num(now_ms())
  for i = 2, #ARGV do call('ZADD', P .. 'pending', 'XX', now, ARGV[i]) end
  return {'ok'}
end
