"""The lecture notes' first computation graph, compiled by diffc.

e = (a + b) * (b + 1), written as the notes write it (c = a + b, d = b + 1,
e = c * d). At a = 2, b = 1 the notes work out e = 6, de/da = 2, de/db = 5.
"""

from __future__ import annotations

import diffc

SOURCE = """
c = a + b
d = b + 1
e = c * d
"""


def main() -> None:
    f = diffc.compile(SOURCE)
    print("source:", " ; ".join(line for line in SOURCE.strip().splitlines()))
    print("e(2, 1)           =", f(2.0, 1.0))
    print("(de/da, de/db)    =", f.grad(2.0, 1.0))
    print()
    print("forward IR:")
    print(f.ir)
    print()
    print("generated gradient source:")
    print(f.grad_source)


if __name__ == "__main__":
    main()
