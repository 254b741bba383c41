-- paced.lua: each connection waits BENCH_DELAY_MS (default 5) between
-- requests, so the server is measured for latency at a light, steady load
-- rather than at saturation.
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "5")

delay = function()
   return pause
end
