"""One summary of a torch.profiler run for the throughput benchmarks: where the time of one step goes."""

from __future__ import annotations

from typing import Any


def summarize(prof: Any, wall_s: float, steps: int, cuda: bool, top: int = 15) -> dict[str, Any]:
    """Per step: wall ms, device-busy ms (the kernels' own time: busy/wall < 1 means the GPU waits on the host) and
    kernels launched; the top kernels by device time and the top host ops by their own CPU time (on a CPU: only
    these). Session 5 found the earlier summaries' busy time double-counted (aten ops carry their kernels' time)."""
    from torch.autograd import DeviceType

    events = prof.key_averages()
    kernels = [e for e in events if e.device_type == DeviceType.CUDA]
    host = [e for e in events if e.device_type != DeviceType.CUDA]

    def rows(chosen: list, attr: str, n: int) -> list[dict[str, Any]]:
        ranked = sorted(chosen, key=lambda e: getattr(e, attr), reverse=True)[:n]
        return [
            {
                "op": e.key[:80],
                "own_ms_per_step": round(getattr(e, attr) / 1e3 / steps, 3),
                "calls_per_step": round(e.count / steps, 1),
            }
            for e in ranked
        ]

    busy = sum(e.self_device_time_total for e in kernels)
    return {
        "steps": steps,
        "wall_ms_per_step": round(wall_s * 1e3 / steps, 2),
        "device_busy_ms_per_step": round(busy / 1e3 / steps, 2) if cuda else None,
        "kernels_per_step": round(sum(e.count for e in kernels) / steps, 1) if cuda else None,
        "top": rows(kernels, "self_device_time_total", top) if cuda else [],
        "top_host": rows(host, "self_cpu_time_total", top if not cuda else 8),
    }
