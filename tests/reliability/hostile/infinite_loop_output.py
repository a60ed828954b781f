# hostile: prints a short line forever
# verdict: runtime_error | time_limit
while True:
    print("spam")
