-- `list(path, count)`: `{'ok', dir id, cursor, {name, entry, ...}}`; cursor `0` means that was
-- all, else the caller goes on with `list_page`.
local function main()
  local names = split(ARGV[2])
  local ids = walk(names, #names)
  local id = ids[#names]
  local k = dkey(id)
  if call('HLEN', k) <= tonumber(ARGV[3]) then return {'ok', id, '0', call('HGETALL', k)} end
  local r = call('HSCAN', k, '0', 'COUNT', ARGV[3])
  return {'ok', id, r[1], r[2]}
end
