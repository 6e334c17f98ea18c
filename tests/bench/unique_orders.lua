-- Order Submits with a fresh order id each (development mode: unsigned). Run with -t 1.
-- TEMPLATE_FILE holds one JSON body with __ID__ where the order id goes; ID_PREFIX makes
-- ids unique across runs.
local head, tail
local index = 0
local prefix = os.getenv("ID_PREFIX") or "m"

function init(args)
  local file = io.open(os.getenv("TEMPLATE_FILE"), "r")
  local body = file:read("*a")
  file:close()
  local at = body:find("__ID__", 1, true)
  head, tail = body:sub(1, at - 1), body:sub(at + 6)
end

function request()
  index = index + 1
  return wrk.format("POST", "/webhooks/order-submit", {["Content-Type"] = "application/json"},
                    head .. prefix .. index .. tail)
end
