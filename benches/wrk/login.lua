-- POST /.netlify/identity/token, grant_type=password, for scripts/bench.
-- EMAIL and PASSWORD come from the environment (a wrong PASSWORD makes a flood);
-- FORWARDED_FOR sets X-Forwarded-For (chipflap runs with GOTRUE_RATE_LIMIT_HEADER=X-Forwarded-For,
-- so a flood and the clients measured during it have their own per-IP throttles).
local function form_escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end
wrk.method = "POST"
wrk.path = "/.netlify/identity/token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
if os.getenv("FORWARDED_FOR") then wrk.headers["X-Forwarded-For"] = os.getenv("FORWARDED_FOR") end
wrk.body = "grant_type=password&username=" .. form_escape(os.getenv("EMAIL"))
  .. "&password=" .. form_escape(os.getenv("PASSWORD"))

-- Count answers by status, so a flood shows what it got (400 wrong password, 429/503 refused).
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function statuses_report()
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      total[status] = (total[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(total) do table.insert(parts, status .. ":" .. count) end
  table.sort(parts)
  io.write("STATUSES " .. table.concat(parts, " ") .. "\n")
end
