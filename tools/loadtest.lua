-- tools/loadtest.lua -- wrk script for tools/loadtest.sh: POST /v1/search
-- with a different query body per request, cycling through the JSON lines
-- of the file named by $RSN_BODIES (one {"vector": [...], "k": K} a line).
local bodies = {}
for line in io.lines(os.getenv("RSN_BODIES")) do bodies[#bodies + 1] = line end
local i = math.random(#bodies)

wrk.method = "POST"
wrk.path = "/v1/search"
wrk.headers["Content-Type"] = "application/json"

request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
