-- `purge(dir id, cursor, count)`: deletes a page of entries of a detached directory (all of
-- them when it has at most `count`): its files' data becomes dead (in `pending`), its
-- subdirectories go to `trash`. The cursor walks the hash across calls, as `HSCAN` needs (a
-- sparse hash can answer an `HSCAN` from cursor 0 with nothing). When the directory is empty it
-- leaves `trash`. Reply: `{'ok', done, {dead members}, {subdirectory ids}, next cursor}`.
local function main()
  local id = ARGV[2]
  local k = dkey(id)
  local flat
  local cursor = '0'
  if call('HLEN', k) <= tonumber(ARGV[4]) then
    flat = call('HGETALL', k)
  else
    local r = call('HSCAN', k, ARGV[3], 'COUNT', ARGV[4])
    cursor = r[1]
    flat = r[2]
  end
  local fields, dead, dirs = {}, {}, {}
  local files, bytes = 0, 0
  for i = 1, #flat, 2 do
    local e = parse(flat[i + 1], k, flat[i])
    fields[#fields + 1] = flat[i]
    if e.kind == 'd' then
      dirs[#dirs + 1] = e.id
    else
      files = files + 1
      bytes = bytes + e.size
      local m = dead_member(e)
      if m ~= '' then dead[#dead + 1] = m end
    end
  end
  local now = num(now_ms())
  for i = 1, #fields, 500 do
    call('HDEL', k, unpack(fields, i, math.min(i + 499, #fields)))
  end
  for i = 1, #dirs, 500 do
    call('SADD', P .. 'trash', unpack(dirs, i, math.min(i + 499, #dirs)))
  end
  for _, m in ipairs(dead) do call('ZADD', P .. 'pending', now, m) end
  stat_add('files', -files)
  stat_add('bytes', -bytes)
  stat_add('dirs', -#dirs)
  local done = 0
  if call('HLEN', k) == 0 then
    call('SREM', P .. 'trash', id)
    done = 1
  end
  return {'ok', done, dead, dirs, cursor}
end
