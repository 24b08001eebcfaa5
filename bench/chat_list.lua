-- wrk: GET a page of 50 messages, cycling over the conversations.
local sides = dofile(os.getenv("BENCH_PAIRS_FILE"))
local n = 0

function request()
    n = n + 1
    local s = sides[(n % #sides) + 1]
    return wrk.format("GET", "/v1/conversations/" .. s.conv .. "/messages?limit=50",
        { ["Authorization"] = "Bearer " .. s.token })
end
