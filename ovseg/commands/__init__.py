"""Subcommands of the ``ovseg`` command line, one module each.

Each module has ``register(subparsers)``, which adds its parser and sets ``func`` to the
function that runs it (returning the exit code). Add a new command by adding its module here.
"""

from __future__ import annotations

from . import bench, demo, devices, eval, export, fetch, models, predict, quantize, serve

COMMANDS = (predict, eval, bench, demo, models, fetch, devices, quantize, export, serve)
