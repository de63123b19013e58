"""The library version, in a module of its own so that every floor of the package can read it without importing the
package root (whose lazy `__getattr__` would pull in the floors above)."""

__version__ = "0.2.0.dev0"
