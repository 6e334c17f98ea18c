-- Cycles through pre-signed requests (path \t signature \t body per line). Run with -t 1.
local requests = {}
local index = 0

function init(args)
  local file = io.open(os.getenv("REQUESTS_FILE"), "r")
  for line in file:lines() do
    local path, signature, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/json",
      ["X-Oracle-CC-WebHook-Signature"] = signature,
    }, body)
  end
  file:close()
end

function request()
  index = index + 1
  return requests[((index - 1) % #requests) + 1]
end
