-- `list(path, count)`: `{'ok', dir id, cursor, {name, entry, ...}}`; cursor `0` means that was
-- all, else the caller goes on from that `HSCAN` cursor. A directory of at most `count`
-- entries comes as cursor `all` and no entries: the caller reads it whole with `HGETALL`
-- itself, which costs Redis a fraction of handing every entry through Lua.
local function main()
  local names = split(ARGV[2])
  local ids = walk(names, #names)
  local id = ids[#names]
  local k = dkey(id)
  if call('HLEN', k) <= tonumber(ARGV[3]) then return {'ok', id, 'all', {}} end
  local r = call('HSCAN', k, '0', 'COUNT', ARGV[3])
  return {'ok', id, r[1], r[2]}
end
