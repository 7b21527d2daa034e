"""Support code that generated modules call: small helpers, one module per back end.

Modules diffc loads itself import these helpers; ``diffc emit`` copies the
source of each helper a module uses into it, so emitted modules need no diffc.
A helper that calls another lists it in its module's ``REQUIRES``.
"""
