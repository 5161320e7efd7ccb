-- Rewrites the counts that never expire, if no consumer applied a batch since the audit's
-- snapshot; go/internal/counts/audit.go builds the call.
--
-- KEYS: ARGV[1] partition watermarks (every partition of the topic, and any other the snapshot
--       saw), then total, by band, by "band — album", then one album hash per band (old and new).
-- ARGV: 1 the number of watermarks, 2 JSON: expected (each watermark as read, in KEYS' order;
--       null: the partition had none, and must still have none), total, hashes (by band, by
--       album, then each band's albums, in KEYS' order; null: none).
local n = tonumber(ARGV[1])
local data = cjson.decode(ARGV[2])
for i = 1, n do
  local want = data.expected[i]
  local got = redis.call('GET', KEYS[i])
  if want == cjson.null then
    if got then
      return 0
    end
  elseif got ~= want then
    return 0
  end
end
redis.call('SET', KEYS[n + 1], data.total)
for i = n + 2, #KEYS do
  redis.call('DEL', KEYS[i])
  local h = data.hashes[i - n - 1]
  if type(h) == 'table' then
    for field, count in pairs(h) do
      redis.call('HSET', KEYS[i], field, string.format('%d', count))
    end
  end
end
return 1
