-- Reads the counts that never expire and every partition's watermark at one instant (a script
-- runs alone), so the counts are exactly those of the records at or below those watermarks;
-- go/internal/counts/audit.go builds the call. Reading the watermark keys' names apart from
-- their values would miss a partition whose first batch is applied in between.
--
-- The watermarks are named from the partition count. The album hashes are found with SCAN, not
-- KEYS: the audit runs as the consumer's Redis user, whose ACL refuses @dangerous commands such as
-- KEYS, and admits SCAN (@read). apply.lua writes a band's album hash and its by_band field in one
-- script, but a hash without a by_band field is what an audit is there to find, so the hashes are
-- looked up by their prefix rather than from by_band's bands. Inside the script the scan sees one
-- instant, like every other read here.
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
local bands = {}
local cursor = '0'
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[2] .. '*', 'COUNT', 1000)
  cursor = page[1]
  for _, k in ipairs(page[2]) do
    bands[#bands + 1] = k
    bands[#bands + 1] = redis.call('HGETALL', k)
  end
until cursor == '0'
return {marks, redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]), bands}
