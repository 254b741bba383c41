-- pipeline.lua: DEPTH GET requests of wrk's URL sent in one write on each
-- connection; wrk counts every response, and records one latency per batch.
-- DEPTH comes from the environment (scripts/bench --pipeline, default 16).
local depth = tonumber(os.getenv("BENCH_PIPELINE") or "16")

init = function(args)
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   batch = table.concat(r)
end

request = function()
   return batch
end
