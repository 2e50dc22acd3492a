-- wrk script for benches/ingest.sh: one reading per request, as a real sensor posts.
-- Arguments (after `--`): TOKENS_FILE THREADS BASE_UNIX_SECONDS
-- Requests rotate over every sensor's token, and every request carries a timestamp no
-- other request has (base - n, n unique across threads), so each 2xx is a new row.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   tokens = {}
   local f = assert(io.open(args[1], "r"))
   for line in f:lines() do
      local token = line:match("^(%S+)")
      if token then table.insert(tokens, token) end
   end
   f:close()
   nthreads = tonumber(args[2])
   base = tonumber(args[3])
   counter = 0
   headers = {}
   headers["Content-Type"] = "application/json"
end

function request()
   local n = counter * nthreads + id
   counter = counter + 1
   headers["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1]
   local body = string.format('{"ts": %d, "value": %.1f}', base - n, (n % 1000) / 10)
   return wrk.format("POST", nil, headers, body)
end
