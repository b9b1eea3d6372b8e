"""kiosk-edge: the in-store proximity and kiosk appliance daemon."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kiosk-edge")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
