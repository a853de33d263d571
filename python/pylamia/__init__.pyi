# Type stubs for pylamia (the compiled module pylamia._C, re-exported).
__version__: str
torch_version: str
