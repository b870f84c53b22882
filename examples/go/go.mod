module llavauhd.example/ask

go 1.19
