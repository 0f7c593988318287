-- `stat_files(parent, name, ...)`: the entry of each file, for a batched read; each path comes
-- as its parent directory and its name. Each directory is resolved once and its names are read
-- in one `HMGET`: a batch mostly reads one directory. Reply: `{'ok', {code, entry or key, ...}}`,
-- a pair per path: code `''` and the file's entry, or an error code and the key it names.
-- Directories fail with `EISDIR`.
local function main()
  local cache = {}
  -- Per parent, in order of first appearance: its names and where each is in ARGV.
  local groups, order = {}, {}
  for i = 2, #ARGV, 2 do
    local g = groups[ARGV[i]]
    if not g then
      g = {names = {}, at = {}}
      groups[ARGV[i]] = g
      order[#order + 1] = ARGV[i]
    end
    g.names[#g.names + 1] = ARGV[i + 1]
    g.at[#g.at + 1] = i
  end
  -- By ARGV index: the entry, false when there is none, or the failure of its directory.
  local found = {}
  for _, parent in ipairs(order) do
    local g = groups[parent]
    local dir, err = try(dir_at, parent, cache)
    if err then
      for _, i in ipairs(g.at) do found[i] = err end
    else
      local values = call('HMGET', dkey(dir.ids[#dir.names]), unpack(g.names))
      for j, i in ipairs(g.at) do found[i] = values[j] end
    end
  end
  local out = {}
  for i = 2, #ARGV, 2 do
    local v = found[i]
    if type(v) == 'table' then
      answer(out, nil, v)
    elseif not v then
      answer(out, nil, {mavfs = 'ENOENT', key = ''})
    elseif string.sub(v, 1, 1) == 'd' then
      answer(out, nil, {mavfs = 'EISDIR', key = ''})
    else
      answer(out, v)
    end
  end
  return {'ok', out}
end
