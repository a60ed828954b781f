# hostile: writes 4 files of 32 MiB in its working directory (each hits the file-size limit)
# verdict: accepted | runtime_error
for i in range(4):
    try:
        with open(f"fill{i}.bin", "wb") as f:
            for _ in range(33):
                f.write(b"\0" * (1 << 20))
    except OSError:
        pass
print("contained")
