-- wrk: POST /v1/auth/login with the bench user's credentials
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"benchmark secret"}'
