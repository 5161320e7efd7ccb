-- Applies one partition's batch of votes atomically; go/internal/counts/apply.go builds the call.
--
-- KEYS: 1 the partition's applied-offset watermark, 2 total, 3 by band, 4 by "band — album",
--       5 the accept-to-counted classes of this 10 s (the call's), then two per vote: its band's
--       album hash, its 10 s bucket.
-- ARGV: 1 the batch's last offset, 2 the watermark the caller last saw or wrote (-1: none),
--       3 KEYS[5]'s expiry (Unix s), then six per vote: offset, band, album, "band — album",
--       its bucket's expiry (Unix s), its accept-to-counted class.
--
-- The votes are the records the caller decided to count (the first record of each vote id, by
-- the MongoDB log). If the watermark is below ARGV[2], Redis lost applied batches (a crash
-- within appendfsync's second, a restored backup, a failover to a lagging replica): nothing is
-- applied, and the caller replays from the watermark. A vote at or below the watermark was
-- applied before (a replay): skipped. Offsets stay strings when written; Lua numbers would print
-- large ones in exponent form.
local current = redis.call('GET', KEYS[1])
local applied = tonumber(current or '-1')
if applied < tonumber(ARGV[2]) then
  return {0, 0, 1, current or '-1'}
end
local counted, replayed = 0, 0
local expiring = {}
for i = 0, (#KEYS - 5) / 2 - 1 do
  local k, a = 5 + 2 * i, 3 + 6 * i
  if tonumber(ARGV[a + 1]) <= applied then
    replayed = replayed + 1
  else
    local band, bucket = ARGV[a + 2], KEYS[k + 2]
    redis.call('INCR', KEYS[2])
    redis.call('HINCRBY', KEYS[3], band, 1)
    redis.call('HINCRBY', KEYS[4], ARGV[a + 4], 1)
    redis.call('HINCRBY', KEYS[k + 1], ARGV[a + 3], 1)
    redis.call('HINCRBY', bucket, band, 1)
    redis.call('HINCRBY', KEYS[5], ARGV[a + 6], 1)
    if not expiring[bucket] then
      redis.call('EXPIREAT', bucket, ARGV[a + 5])
      expiring[bucket] = true
    end
    counted = counted + 1
  end
end
if counted > 0 then
  redis.call('EXPIREAT', KEYS[5], ARGV[3])
end
if tonumber(ARGV[1]) > applied then
  redis.call('SET', KEYS[1], ARGV[1])
  current = ARGV[1]
end
return {counted, replayed, 0, current or '-1'}
