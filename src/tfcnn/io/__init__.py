"""Reading and writing files.

Expression matrices, interactions, gene IDs, bundled data, downloads, CEL files, and
atomic outputs.
"""
