"""The one line every benchmark prints with its numbers: which CPU measured them.

CPU model (with family and model number), logical cores, the vector extensions that decide
OpenVINO's CPU precision and kernels (AVX2, AVX-512, VNNI, BF16, AMX), and the load average
at the time (these machines are shared; a loaded run reads differently).
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

EXTENSIONS = ("avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def machine() -> str:
    model, flags = platform.processor() or "unknown CPU", ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.*)", text).group(1).strip()
        family = re.search(r"cpu family\s*:\s*(\d+)", text).group(1)
        number = re.search(r"^model\s*:\s*(\d+)", text, re.M).group(1)
        model += f" (family {family} model {number})"
        flags = re.search(r"flags\s*:\s*(.*)", text).group(1)
    except (OSError, AttributeError):
        pass
    ext = [name for name in EXTENSIONS if f" {name}" in f" {flags} "]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{model}, {os.cpu_count()} cores, {'+'.join(ext) or 'no AVX2'}, load average {load:.2f}"
