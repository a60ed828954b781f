# hostile: lifts the recursion limit and recurses until the C stack overflows
# verdict: runtime_error | memory_limit | time_limit
import sys

sys.setrecursionlimit(10**9)


def f(n):
    return f(n + 1) + 1


f(0)
