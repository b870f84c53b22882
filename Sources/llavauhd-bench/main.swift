import LlavaUHD

print("llavauhd-bench: no benchmarks yet")
