"""Einsum equations with operand shapes: ``(source, equation, shapes)``.

* ``issue17``: an explicit output without ``...`` sums the ``...`` axes.

Every case is checked forward against ``numpy.einsum(optimize=True)`` and backward
against an exact Jacobian, in float32 and float64.
"""

# issue #17: an explicit output without '...' sums the '...' axes
CORPUS = [
    ("issue17", eq, shapes)
    for eq, shapes in [
        ("i...->i", [(3, 4, 5)]),
        ("i...->i", [(3, 1)]),
        ("...->", [(3, 4)]),
        ("...i->i", [(2, 3, 4)]),
        ("i...j->ji", [(2, 3, 4, 5)]),
        ("...ii->i", [(2, 3, 3)]),
        ("ij...,i...->i", [(2, 3, 4, 5), (2, 5)]),
        ("ij...,i...->i", [(2, 3, 4, 1), (2, 4, 6)]),
        ("j...,i...->", [(3, 4), (2, 4)]),
        ("j...,i...->ij", [(3, 1, 4), (2, 5, 1)]),
        ("ijk,k...->i", [(2, 3, 4), (4, 5, 6)]),
        ("...ij,...jk->ik", [(2, 3, 4), (5, 1, 4, 2)]),
        ("i...,...,j...->ij", [(2, 3), (3,), (4, 1)]),
        ("ab...,b...->a", [(2, 3, 0), (3, 0)]),
        ("a...,a...->", [(0, 3), (0, 1)]),
        ("i...,i...->i", [(3,), (3,)]),
    ]
]
