-- GET the bench hello view (the baseline).
function request()
  return wrk.format("GET", "/bench/hello")
end
