-- `trash()`: `{'ok', {dir ids}}`, up to 100 of them.
local function main()
  local r = call('SSCAN', P .. 'trash', '0', 'COUNT', '100')
  return {'ok', r[2]}
end
