-- `dirs(path, ...)`: the id and entry count of each directory, for a batched read, which then
-- reads the entries it needs itself (`HMGET` or `HGETALL` from the client: every value a script
-- reads is converted to Lua and back, which costs more than the lookups). Each path is resolved
-- once per call. Reply: `{'ok', {code, id or key, count, ...}}`, a triple per path: code `''`,
-- the directory's id and its `HLEN`, or an error code, the key it names and 0.
local function main()
  local cache = {}
  local out = {}
  for i = 2, #ARGV do
    local dir, err = try(dir_at, ARGV[i], cache)
    if err then
      out[#out + 1] = err.mavfs
      out[#out + 1] = err.key
      out[#out + 1] = 0
    else
      local id = dir.ids[#dir.names]
      out[#out + 1] = ''
      out[#out + 1] = id
      out[#out + 1] = call('HLEN', dir.key)
    end
  end
  return {'ok', out}
end
