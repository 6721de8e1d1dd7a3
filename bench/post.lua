-- wrk script: POST a GraphQL query (BENCH_QUERY) with an optional bearer
-- token (BENCH_TOKEN); counts non-200 responses as errors.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.body = '{"query":' .. string.format("%q", os.getenv("BENCH_QUERY")):gsub("\\\n", "\\n") .. '}'

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    wrk.thread:stop()
    io.stderr:write("unexpected response " .. status .. ": " .. body:sub(1, 300) .. "\n")
  end
end
