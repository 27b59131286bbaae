-- One reading per request, each from the next device with its own key; timestamps never repeat.
function request()
  local n = next_number()
  local device = device_for(n)
  local body = string.format('{"data": {"temperature": %.1f}, "timestamp": %.0f}', 20 + (n % 100) / 10, base_ts + n)
  return wrk.format("POST", "/api/v1/telemetry", {["X-API-Key"] = device.key, ["Content-Type"] = "application/json"}, body)
end
