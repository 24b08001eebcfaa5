"""Sign up pairs of users, make them contacts, open a conversation each;
print a Lua table {token=..., conv=...} per conversation side for wrk."""
import json
import sys
import urllib.request

api, npairs = sys.argv[1], int(sys.argv[2])


def call(method, path, body=None, token=None):
    req = urllib.request.Request(api + path, method=method,
                                 data=json.dumps(body).encode() if body else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req) as res:
        raw = res.read()
        return json.loads(raw) if raw else None


def signup(name):
    return call("POST", "/v1/auth/signup", {
        "email": name + "@bench.example", "password": "benchmark secret",
        "display_name": name, "username": name})


sides = []
for i in range(npairs):
    a, b = signup("a%04d" % i), signup("b%04d" % i)
    call("POST", "/v1/contacts", {"user_id": b["user"]["id"]}, a["access_token"])
    call("POST", "/v1/contacts/%s/accept" % a["user"]["id"], None, b["access_token"])
    conv = call("POST", "/v1/conversations", {"user_id": b["user"]["id"]},
                a["access_token"])["id"]
    sides.append((a["access_token"], conv))
    sides.append((b["access_token"], conv))

print("return {")
for token, conv in sides:
    print('  {token="%s", conv="%s"},' % (token, conv))
print("}")
