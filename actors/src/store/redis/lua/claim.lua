-- `claim(grace ms, limit)`: leases pending members untouched for `grace`: their score moves to
-- now, so no other sweeper takes them while this one deletes their chunks. `{'ok', {members}}`.
local function main()
  local now = now_ms()
  local cutoff = now - tonumber(ARGV[2])
  local ms = call('ZRANGEBYSCORE', P .. 'pending', '-inf', '(' .. num(cutoff), 'LIMIT', '0', ARGV[3])
  for _, m in ipairs(ms) do call('ZADD', P .. 'pending', num(now), m) end
  return {'ok', ms}
end
