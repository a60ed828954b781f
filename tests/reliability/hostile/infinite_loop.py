# hostile: spins forever without output
# verdict: time_limit
while True:
    pass
