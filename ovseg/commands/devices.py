"""``ovseg devices [--model M]``: OpenVINO devices, and which of them can run a model."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .common import add_cache_option

if TYPE_CHECKING:
    import openvino as ov


@dataclass(frozen=True)
class DeviceRow:
    """One device: its full name and, when a model was given, the ops it cannot run
    (``blocked``, empty when it runs them all) or why it could not be asked (``error``)."""

    device: str
    full_name: str
    blocked: Counter[str] | None = None
    error: str | None = None


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "devices",
        help="list OpenVINO devices; with --model, which can run it",
        description="List the available OpenVINO devices with their full names. With --model, "
        "ask each device (query_model) which of the model's ops it supports, and name the ops "
        "that keep a device from running it.",
    )
    parser.add_argument("-m", "--model", help="model IR .xml / .onnx, or a catalogue name")
    add_cache_option(parser)
    parser.add_argument("--json", action="store_true", help="print the listing as JSON")
    parser.set_defaults(func=run)


def device_rows(core: Any, model: ov.Model | None = None) -> list[DeviceRow]:
    """One row per device in ``core.available_devices``; the query is made only with a model."""
    from ..errors import DeviceError
    from ..model import ov_message, unsupported_ops

    rows = []
    for device in core.available_devices:
        try:
            full_name = str(core.get_property(device, "FULL_DEVICE_NAME"))
        except RuntimeError as error:
            full_name = f"(unknown: {ov_message(error)})"
        if model is None:
            rows.append(DeviceRow(device, full_name))
            continue
        try:
            rows.append(DeviceRow(device, full_name, blocked=unsupported_ops(core, model, device)))
        except DeviceError as error:
            rows.append(DeviceRow(device, full_name, error=str(error)))
    return rows


def _verdict(row: DeviceRow) -> str:
    if row.error is not None:
        return f"unknown: {row.error}"
    if row.blocked is None:
        return ""
    if not row.blocked:
        return "can run it"
    ops = ", ".join(f"{name} (x{count})" for name, count in sorted(row.blocked.items()))
    return f"cannot run {sum(row.blocked.values())} op(s): {ops}; try HETERO:{row.device},CPU"


def run(args: argparse.Namespace) -> int:
    import openvino as ov

    from ..model import read_model

    core = ov.Core()
    model = read_model(args.model, core, cache=args.cache_dir)[0] if args.model else None
    rows = device_rows(core, model)
    if args.json:
        doc = [
            {
                "device": r.device,
                "full_name": r.full_name,
                **({} if model is None else {"can_run": r.error is None and not r.blocked}),
                **({} if r.blocked is None else {"blocked_ops": dict(sorted(r.blocked.items()))}),
                **({} if r.error is None else {"error": r.error}),
            }
            for r in rows
        ]
        print(json.dumps({"model": args.model, "devices": doc}, indent=1))
        return 0
    if not rows:
        print("no OpenVINO device available")
        return 0
    width = max(len(r.device) for r in rows)
    name_width = max(len(r.full_name) for r in rows)
    if model is not None:
        print(f"model: {args.model}")
    for r in rows:
        print(f"{r.device.ljust(width)}  {r.full_name.ljust(name_width)}  {_verdict(r)}".rstrip())
    return 0
