-- A batch of BENCH_RECORDS records of BENCH_FIELDS measurements each per request, from the next device.
local records = tonumber(os.getenv("BENCH_RECORDS"))
local fields = tonumber(os.getenv("BENCH_FIELDS"))
local names = {"temperature", "humidity", "pressure", "voltage", "current", "power", "rssi", "battery"}

function request()
  local n = next_number()
  local device = device_for(n)
  local parts = {}
  for i = 1, records do
    local values = {}
    for f = 1, fields do
      values[f] = string.format('"%s": %.2f', names[f], (n * 7 + i * 13 + f) % 1000 / 10)
    end
    parts[i] = string.format('{"data": {%s}, "timestamp": %.0f}', table.concat(values, ", "), base_ts + n * records + i)
  end
  local body = "[" .. table.concat(parts, ", ") .. "]"
  return wrk.format("POST", "/api/v1/telemetry", {["X-API-Key"] = device.key, ["Content-Type"] = "application/json"}, body)
end
