-- `init(layout, epoch)`: checks the layout version and the types of the fixed keys. A new
-- namespace gets the layout, the root's mtime and epoch `epoch`, and owes a scan for chunks of
-- earlier epochs (`scan`: its metadata may be new because a server lost the old one); a
-- namespace made before epochs gets `epoch` too. A `meta` gone while the other metadata is there
-- (deleted by hand) owes no scan: the files it still lists use data of the old epoch. Reply:
-- `{'ok', 'epoch', epoch, scan owed ('1' or '')}`, or `{'ok', 'layout', found}` for another
-- layout. Layout 1 (before packed files) is upgraded to 2 in place: it has none of them.
local function main()
  local expect = {meta = 'hash', stats = 'hash', pending = 'zset', trash = 'set', packs = 'hash',
                  ['d:0'] = 'hash'}
  for suffix, kind in pairs(expect) do
    local t = redis.call('TYPE', P .. suffix)['ok']
    if t ~= 'none' and t ~= kind then fail('WRONGTYPE', P .. suffix) end
  end
  local meta = P .. 'meta'
  local layout = call('HGET', meta, 'layout')
  if layout == '1' and ARGV[2] == '2' then
    call('HSET', meta, 'layout', '2')
    layout = '2'
  end
  if layout and layout ~= ARGV[2] then return {'ok', 'layout', layout} end
  if not layout then
    call('HSET', meta, 'layout', ARGV[2], 'epoch', ARGV[3])
    if call('EXISTS', P .. 'd:0', P .. 'stats', P .. 'pending', P .. 'trash') == 0 then
      call('HSET', meta, 'scan', '1')
    end
    call('HSETNX', meta, 'mtime', num(now_ms()))
  elseif not call('HGET', meta, 'epoch') then
    call('HSET', meta, 'epoch', ARGV[3])
  end
  return {'ok', 'epoch', call('HGET', meta, 'epoch'), call('HGET', meta, 'scan') or ''}
end
