# hostile: grows a list of 1 MiB strings until something stops it
# verdict: memory_limit | time_limit
chunks = []
while True:
    chunks.append("x" * (1 << 20) + str(len(chunks)))
