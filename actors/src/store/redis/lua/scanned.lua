-- `scanned()`: the scan for chunks of earlier epochs is done; no store owes it any more. `{'ok'}`.
local function main()
  call('HDEL', P .. 'meta', 'scan')
  return {'ok'}
end
