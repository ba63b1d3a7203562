"""The demo's window (OpenCV HighGUI): opening it, or saying plainly why there can be none."""

from __future__ import annotations

import os
import sys

import cv2

from .controls import KEY_HELP
from .errors import ConfigError

__all__ = ["open_window", "window_closed"]


def open_window(name: str) -> None:
    """Create the window, or say plainly why there can be none (Qt aborts the process when it
    cannot reach a display, so that is checked first)."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    ):
        raise ConfigError("expected a display for the window, got none ($DISPLAY is not set): run headless (--no-show)")
    try:
        cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # no Qt toolbar
        cv2.setWindowTitle(name, f"{name}  ({KEY_HELP})")
    except cv2.error as error:
        raise ConfigError(
            f"expected an OpenCV with a GUI (opencv-python), got one without ({str(error).strip().splitlines()[-1]}): "
            "run headless (--no-show)"
        ) from None


def window_closed(name: str) -> bool:
    try:
        return cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:
        return True
