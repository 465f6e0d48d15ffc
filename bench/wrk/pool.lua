-- wrk -s bench/wrk/pool.lua URL -- COOKIEFILE [COOKIENAME=JSESSIONID] [METHOD=GET] [rid]
-- Every request carries the session cookie of one session from a fixed pool of
-- pre-created sessions (one cookie value a line in COOKIEFILE); each wrk thread cycles
-- through the pool from its own offset, so with a pool much larger than the connection
-- count two in-flight requests almost never share a session.
-- Adapted from the Tomcat anchor's wrk/pool.lua (../shared/anchors/tomcat/wrk/pool.lua):
-- the cookie name and method are parameters (Cohort: COHORTSESSION, POST /api/counter;
-- Tomcat: JSESSIONID, GET /app/count.jsp). A POST carries an empty body (Content-Length: 0).
-- With `rid`, every request carries a new `Cohort-Request-Id` (as `cohort balancer` sends
-- with a POST), so a node records each write's response (the exactly-once record).
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local cookies = {}
local idx = 0
local name = "JSESSIONID"
local method = "GET"
local body = nil
local rid = false
local serial = 0

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    if #line > 0 then cookies[#cookies + 1] = line end
  end
  f:close()
  if args[2] then name = args[2] end
  if args[3] then method = args[3] end
  if method == "POST" then body = "" end
  rid = args[4] == "rid"
  idx = (tid * 7919) % #cookies
end

function request()
  idx = idx % #cookies + 1
  local headers = { ["Cookie"] = name .. "=" .. cookies[idx] }
  if rid then
    serial = serial + 1
    headers["Cohort-Request-Id"] = string.format("%016x-%x", tid + 1, serial)
  end
  return wrk.format(method, nil, headers, body)
end
