-- Applies one partition's batch of votes atomically; go/internal/counts/apply.go builds the call.
--
-- KEYS: 1 the partition's applied-offset watermark, 2 total, 3 by band, 4 by "band — album",
--       then three per vote: its vote-id marker, its band's album hash, its 10 s bucket.
-- ARGV: 1 the batch's last offset, 2 the marker TTL in seconds, 3 the partition,
--       then five per vote: offset, band, album, "band — album", its bucket's expiry (Unix s).
--
-- A vote at or below the watermark was applied before (a replay): skipped. A vote whose marker
-- exists was counted under another record (the same vote id sent twice): skipped. Offsets stay
-- strings when written; Lua numbers would print large ones in exponent form.
local applied = tonumber(redis.call('GET', KEYS[1]) or '-1')
local ttl = ARGV[2]
local counted, duplicates, replayed = 0, 0, 0
local expiring = {}
for i = 0, (#KEYS - 4) / 3 - 1 do
  local k, a = 4 + 3 * i, 3 + 5 * i
  local offset = ARGV[a + 1]
  if tonumber(offset) <= applied then
    replayed = replayed + 1
  elseif redis.call('SET', KEYS[k + 1], ARGV[3] .. ':' .. offset, 'NX', 'EX', ttl) then
    local band, bucket = ARGV[a + 2], KEYS[k + 3]
    redis.call('INCR', KEYS[2])
    redis.call('HINCRBY', KEYS[3], band, 1)
    redis.call('HINCRBY', KEYS[4], ARGV[a + 4], 1)
    redis.call('HINCRBY', KEYS[k + 2], ARGV[a + 3], 1)
    redis.call('HINCRBY', bucket, band, 1)
    if not expiring[bucket] then
      redis.call('EXPIREAT', bucket, ARGV[a + 5])
      expiring[bucket] = true
    end
    counted = counted + 1
  else
    duplicates = duplicates + 1
  end
end
if tonumber(ARGV[1]) > applied then
  redis.call('SET', KEYS[1], ARGV[1])
end
return {counted, duplicates, replayed}
