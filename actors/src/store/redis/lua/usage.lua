-- `usage()`: `{'ok', files, dirs, bytes}`.
local function main()
  local r = call('HMGET', P .. 'stats', 'files', 'dirs', 'bytes')
  return {'ok', r[1] or '0', r[2] or '0', r[3] or '0'}
end
