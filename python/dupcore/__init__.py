"""dupcore: a fast, archive-compatible Rust core for duplicity.

This package is imported at interpreter start (through ``dupcore-activate.pth``), so it must stay
cheap: nothing here loads the extension module or duplicity.
"""


def __getattr__(name):
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("dupcore")
        except PackageNotFoundError:  # running from a source tree
            return "0+unknown"
    raise AttributeError(name)
