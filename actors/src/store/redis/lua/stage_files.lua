-- `stage_files(member...)`: registers the data of a batched write in `pending`, before any of
-- its chunks exist. The destinations are checked by `commit_files`. `{'ok'}`.
local function main()
  local now = num(now_ms())
  local args = {}
  for i = 2, #ARGV do
    args[#args + 1] = now
    args[#args + 1] = ARGV[i]
  end
  call('ZADD', P .. 'pending', unpack(args))
  return {'ok'}
end
