-- `stat(path)`: `{'ok', entry}`; the root is a directory entry with id 0.
local function main()
  local names = split(ARGV[2])
  local n = #names
  if n == 0 then
    local m = call('HGET', P .. 'meta', 'mtime') or '0'
    return {'ok', 'd/0/' .. m}
  end
  local ids = walk(names, n - 1)
  local k = dkey(ids[n - 1])
  local v = call('HGET', k, names[n])
  if not v then fail('ENOENT') end
  parse(v, k, names[n])
  return {'ok', v}
end
