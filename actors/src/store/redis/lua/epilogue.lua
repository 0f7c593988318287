-- Runs `main` and turns a `fail` into an `{'err', code, key}` reply.
local ok, res = pcall(main)
if ok then return res end
if type(res) == 'table' then
  if res.mavfs then return {'err', res.mavfs, res.key} end
  return res
end
return redis.error_reply(tostring(res))
