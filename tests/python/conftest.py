"""Process-wide settings for the pylamia tests."""
import pylamia

# What the lamia tool does at start (include/lamia/core/allocator.hpp): training steps reuse freed
# memory instead of faulting in fresh pages every step.
pylamia.keep_freed_memory()
