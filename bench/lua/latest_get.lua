-- GET a device's latest values with its own key, cycling through every device.
function request()
  local device = device_for(next_number())
  return wrk.format("GET", "/api/v1/telemetry/" .. device.id .. "/latest", {["X-API-Key"] = device.key})
end
