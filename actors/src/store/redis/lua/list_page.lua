-- `list_page(dir id, cursor, count)`: `{'ok', cursor, {name, entry, ...}}`.
local function main()
  local r = call('HSCAN', dkey(ARGV[2]), ARGV[3], 'COUNT', ARGV[4])
  return {'ok', r[1], r[2]}
end
