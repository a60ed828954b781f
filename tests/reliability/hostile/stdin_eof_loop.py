# hostile: reads past the end of its input
# verdict: runtime_error
while True:
    input()
