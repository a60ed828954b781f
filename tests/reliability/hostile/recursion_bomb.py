# hostile: recurses without end under the header's recursion limit
# verdict: runtime_error | memory_limit
def f(n):
    return f(n + 1) + 1


f(0)
