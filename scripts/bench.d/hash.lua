-- hash.lua: POST /hash with a JSON password; every request costs one bcrypt.
wrk.method = "POST"
wrk.path = "/hash"
wrk.body = '{"password":"correct horse battery staple"}'
wrk.headers["Content-Type"] = "application/json"
