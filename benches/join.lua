-- wrk script: POST /api/rooms/{id}/join with a unique fingerprint and name per request.
-- args: inviteCode runTag
local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end
function init(args)
  code = args[1]
  tag = args[2] or "run"
  i = 0
  created = 0
  other = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  i = i + 1
  local body = string.format(
    '{"inviteCode":"%s","displayName":"Student %d-%d","sessionFingerprint":"fp-%s-%d-%012d"}',
    code, tid, i, tag, tid, i)
  return wrk.format(nil, nil, nil, body)
end
function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1; last = status end
end
function done(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other")
  end
  io.write(string.format("created=%d other=%d\n", c, o))
end
