-- wrk: POST /v1/conversations/{id}/messages, each with a fresh client_id,
-- cycling over the conversations of bench/chat_setup.py.
local sides = dofile(os.getenv("BENCH_PAIRS_FILE"))
local n = 0

function setup(thread)
    thread:set("seed", math.random(1, 2^30))
end

function init(args)
    math.randomseed(seed or os.time())
    n = math.random(0, #sides - 1)
end

local function uuid()
    return (string.gsub("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", "[xy]",
        function(c)
            local v = (c == "x") and math.random(0, 15) or math.random(8, 11)
            return string.format("%x", v)
        end))
end

function request()
    n = n + 1
    local s = sides[(n % #sides) + 1]
    return wrk.format("POST", "/v1/conversations/" .. s.conv .. "/messages",
        { ["Authorization"] = "Bearer " .. s.token,
          ["Content-Type"] = "application/json" },
        '{"client_id":"' .. uuid() .. '","body":"hello from the benchmark"}')
end
