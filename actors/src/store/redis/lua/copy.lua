-- `copy(from, to, data)`: checks a copy of file `from` onto `to` and registers the copy's data,
-- placed as the source's, in `pending`. Reply: `{'ok', member, source entry}`.
local function main()
  local fnames = split(ARGV[2])
  local tnames = split(ARGV[3])
  if #fnames == 0 then fail('EISDIR', 'from') end
  local fids = walk(fnames, #fnames - 1, 'from')
  local fk = dkey(fids[#fnames - 1])
  local v = call('HGET', fk, fnames[#fnames])
  if not v then fail('ENOENT', 'from') end
  local e = parse(v, fk, fnames[#fnames])
  if e.kind == 'd' then fail('EISDIR', 'from') end
  if #tnames == 0 then fail('EISDIR', 'to') end
  local tids = walk(tnames, #tnames - 1, 'to')
  local t = get(tids[#tnames - 1], tnames[#tnames])
  if t and t.kind == 'd' then fail('EISDIR', 'to') end
  -- A copy of a packed file is a key of its own: the pack's key is not the copy's to share.
  local place = e.place
  if place == '' or e.off then place = ARGV[4] end
  local member = ARGV[4] .. '|' .. place
  call('ZADD', P .. 'pending', num(now_ms()), member)
  return {'ok', member, v}
end
