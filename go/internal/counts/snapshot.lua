-- Reads the counts that never expire and every partition's watermark at one instant (a script
-- runs alone), so the counts are exactly those of the records at or below those watermarks;
-- go/internal/counts/audit.go builds the call. Reading the watermark keys' names apart from
-- their values would miss a partition whose first batch is applied in between.
--
-- Every key read is named from the arguments and by_band's bands, never looked up with KEYS or
-- SCAN: the audit runs as the consumer's Redis user, whose ACL refuses @dangerous commands
-- (KEYS blocks the server for the whole keyspace). apply.lua writes a band's album hash and its
-- by_band field in one script, so by_band names every band that has one.
--
-- KEYS: total, by band, by "band — album".
-- ARGV: 1 the watermark keys' prefix, 2 the band album hashes' prefix, 3 the partitions.
-- Returns {watermark key, value, ...}, total (false: none), by band, by album (HGETALL replies),
-- {band album hash key, its HGETALL reply, ...}.
local marks = {}
for p = 0, tonumber(ARGV[3]) - 1 do
  local k = ARGV[1] .. p
  local v = redis.call('GET', k)
  if v then
    marks[#marks + 1] = k
    marks[#marks + 1] = v
  end
end
local byBand = redis.call('HGETALL', KEYS[2])
local bands = {}
for i = 1, #byBand, 2 do
  local k = ARGV[2] .. byBand[i]
  local albums = redis.call('HGETALL', k)
  if #albums > 0 then
    bands[#bands + 1] = k
    bands[#bands + 1] = albums
  end
end
return {marks, redis.call('GET', KEYS[1]), byBand, redis.call('HGETALL', KEYS[3]), bands}
