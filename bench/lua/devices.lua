-- Shared by the request scripts: the devices (id and key, one "id key" line each) in BENCH_DEVICES,
-- and a number per request that is unique across wrk's threads (thread id + counter * threads).
-- Devices are taken in turn from BENCH_OFFSET on, so consecutive runs carry on through the fleet.
local next_thread = 0

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end

devices = {}
local counter = 0

function load_devices()
  for line in io.lines(os.getenv("BENCH_DEVICES")) do
    local id, key = line:match("(%d+) (%S+)")
    devices[#devices + 1] = {id = id, key = key}
  end
  threads = tonumber(os.getenv("BENCH_THREADS"))
  base_ts = tonumber(os.getenv("BENCH_BASE_TS") or "0")
  offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
end

function next_number()
  counter = counter + 1
  return counter * threads + thread_id
end

function device_for(n)
  return devices[((n + offset) % #devices) + 1]
end

function init(args)
  load_devices()
end
