-- report.lua: appended to every scenario script by scripts/bench. wrk calls
-- done() once at the end; it prints one line that scripts/bench parses.
-- Latencies are microseconds.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
