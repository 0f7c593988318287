-- `stat_files(parent, name, ...)`: the entry of each file, for a batched read; each path comes
-- as its parent directory and its name, so that a batch in one directory resolves it once.
-- Reply: `{'ok', {code, entry or key, ...}}`, a pair per path: code `''` and the file's entry,
-- or an error code and the key it names. Directories fail with `EISDIR`.
local function main()
  local out = {}
  local cache = {}
  local function stat_one(i)
    local dir = dir_at(ARGV[i], cache)
    local k = dkey(dir.ids[#dir.names])
    local v = call('HGET', k, ARGV[i + 1])
    if not v then fail('ENOENT') end
    if string.sub(v, 1, 1) == 'd' then fail('EISDIR') end
    return v
  end
  for i = 2, #ARGV, 2 do
    answer(out, try(stat_one, i))
  end
  return {'ok', out}
end
