"""The trim of the stream, as one Lua script so that it is atomic."""

# Trim below the oldest entry any group still needs (its oldest pending entry, else the one
# after its last delivered), keeping at least ARGV[1] entries. One script, so no group can
# read new entries between the look at its progress and the trim (Redis 7.0 has no
# `XTRIM ... ACKED`). Returns how many entries were removed.
TRIM_SCRIPT = """
local function seq(id) return tonumber(string.match(id, '^(%d+)')) end
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
end
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return 0 end
local head = seq(field(redis.call('XINFO', 'STREAM', KEYS[1]), 'last-generated-id'))
local floor = head - tonumber(ARGV[1]) + 1
for _, group in ipairs(groups) do
  local needed = seq(field(group, 'last-delivered-id')) + 1
  local pending = redis.call('XPENDING', KEYS[1], field(group, 'name'))
  if pending[1] > 0 then needed = seq(pending[2]) end
  if needed < floor then floor = needed end
end
if floor <= 1 then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', floor))
"""
