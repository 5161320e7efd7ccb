-- Reads the counts that never expire and every partition's watermark at one instant (a script
-- runs alone), so the counts are exactly those of the records at or below those watermarks;
-- go/internal/counts/audit.go builds the call. Reading the watermark keys' names apart from
-- their values would miss a partition whose first batch is applied in between.
--
-- KEYS: total, by band, by "band — album".
-- ARGV: 1 the watermark keys' prefix, 2 the band album hashes' prefix.
-- Returns {watermark key, value, ...}, total (false: none), by band, by album (HGETALL replies),
-- {band album hash key, its HGETALL reply, ...}.
local marks = {}
for _, k in ipairs(redis.call('KEYS', ARGV[1] .. '*')) do
  marks[#marks + 1] = k
  marks[#marks + 1] = redis.call('GET', k)
end
local bands = {}
for _, k in ipairs(redis.call('KEYS', ARGV[2] .. '*')) do
  bands[#bands + 1] = k
  bands[#bands + 1] = redis.call('HGETALL', k)
end
return {marks, redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]), bands}
