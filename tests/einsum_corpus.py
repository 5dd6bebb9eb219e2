"""Einsum equations from public test suites, with operand shapes.

Each entry is ``(source, equation, shapes)``. Sources:

* ``numpy``: ``numpy/_core/tests/test_einsum.py`` (NumPy 2.4): the optimize_compare
  lists (sizes from its ``global_size_dict``), the view, sum, broadcast, singleton and
  regression tests (with their shapes, a few shrunk so that an exact Jacobian stays
  cheap; those say so).
* ``opt_einsum``: the ``tests`` list of ``opt_einsum/tests/test_contract.py``,
  reproduced from memory; equations that NumPy's list already holds with the same
  sizes are not repeated. Its size table starts like NumPy's (a=2, b=3, c=4, ...).
* ``torch``: ``test_einsum`` and ``test_einsum_corner_cases`` of PyTorch's
  ``test/test_linalg.py``, reproduced from memory, with its tensor shapes.
* ``issue17``: an explicit output without ``...`` sums the ``...`` axes.

Every case is checked forward against ``numpy.einsum(optimize=True)`` and backward
against an exact Jacobian, in float32 and float64.
"""

# NumPy's and opt_einsum's size of each label
SIZES = dict(zip("abcdefghij", (2, 3, 4, 5, 4, 3, 2, 6, 5, 4), strict=True))


def _sized(equation):
    lhs = equation.split("->")[0]
    return [tuple(SIZES[c] for c in term) for term in lhs.split(",")]


# numpy: TestEinsum.optimize_compare and the path tests (shapes from SIZES)
_NUMPY_OPTIMIZE = [
    "a,ab,abc->abc",
    "a,b,ab->ab",
    "ea,fb,gc,hd,abcd->efgh",
    "ea,fb,abcd,gc,hd->efgh",
    "abcd,ea,fb,gc,hd->efgh",
    "acdf,jbje,gihb,hfac,gfac,gifabc,hfac",
    "cd,bdhe,aidb,hgca,gc,hgibcd,hgac",
    "abhe,hidj,jgba,hiab,gab",
    "bde,cdh,agdb,hica,ibd,hgicd,hiac",
    "chd,bde,agbc,hiad,hgc,hgi,hiad",
    "chd,bde,agbc,hiad,bdi,cgh,agdb",
    "bdhe,acad,hiab,agac,hibd",
    "ab,ab,c->",
    "ab,ab,c->c",
    "ab,ab,cd,cd->",
    "ab,ab,cd,cd->ac",
    "ab,ab,cd,cd->cd",
    "ab,ab,cd,cd,ef,ef->",
    "ab,cd,ef->abcdef",
    "ab,cd,ef->acdf",
    "ab,cd,de->abcde",
    "ab,cd,de->be",
    "ab,bcd,cd->abcd",
    "ab,bcd,cd->abd",
    "eb,cb,fb->cef",
    "dd,fb,be,cdb->cef",
    "bca,cdb,dbf,afc->",
    "dcc,fce,ea,dbf->ab",
    "fdf,cdd,ccd,afe->ae",
    "abcd,ad",
    "ed,fcd,ff,bcf->be",
    "baa,dcf,af,cde->be",
    "bd,db,eac->ace",
    "fff,fae,bef,def->abd",
    "efc,dbc,acf,fd->abe",
    "ba,ac,da->bcd",
    "ab,ab",
    "ab,ba",
    "abc,abc",
    "abc,bac",
    "abc,cba",
    "aab,fa,df,ecc->bde",
    "ecb,fef,bad,ed->ac",
    "bcf,bbb,fbf,fc->",
    "bb,ff,be->e",
    "bcb,bb,fc,fff->",
    "fbb,dfd,fc,fc->",
    "afd,ba,cc,dc->bf",
    "adb,bc,fa,cfc->d",
    "bbd,bda,fc,db->acf",
    "dba,ead,cad->bce",
    "aef,fbc,dca->bde",
    # TestEinsumPath
    "a,b,c->abc",
    "acdf,jbje,gihb,hfac",
    "cab,cdd->ab",
    "ab,bc,cd,de->ae",
    "a,a,a->a",
]

# opt_einsum: test_contract.py's ``tests`` list, less what NumPy's list has
_OPT_EINSUM = [
    "a,->a",
    "ab,->ab",
    ",ab,->ab",
    ",,->",
    "ab,bc",
    "ab,cb",
    "ba,bc",
    "ba,cb",
    "abcd,cd",
    "abcd,ab",
    "abcd,cdef",
    "abcd,cdef->feba",
    "abcd,efdc",
    "aab,bc->ac",
    "ab,bcc->ac",
    "aab,bcc->ac",
    "baa,bcc->ac",
    "aab,ccb->ac",
]

CORPUS = [("numpy", eq, _sized(eq)) for eq in _NUMPY_OPTIMIZE]
CORPUS += [("opt_einsum", eq, _sized(eq)) for eq in _OPT_EINSUM]

# numpy: views, sums, products and regressions, with the tests' own shapes
CORPUS += [
    ("numpy", eq, shapes)
    for eq, shapes in [
        ("...", [(2, 3)]),
        ("ij", [(2, 3)]),
        ("ji", [(2, 3)]),
        ("ii->i", [(3, 3)]),
        ("...ii->...i", [(3, 3, 3)]),
        ("ii...->...i", [(3, 3, 3)]),
        ("...ii->i...", [(3, 3, 3)]),
        ("jii->ij", [(3, 3, 3)]),
        ("ii...->i...", [(3, 3, 3)]),
        ("i...i->i...", [(3, 3, 3)]),
        ("i...i->...i", [(3, 3, 3)]),
        ("iii->i", [(3, 3, 3)]),
        ("ijk->jik", [(2, 3, 4)]),
        ("i->", [(1,)]),
        ("i->", [(7,)]),
        ("...i->...", [(2, 3, 1)]),
        ("...i->...", [(2, 3, 5)]),
        ("i...->...", [(2, 5)]),
        ("i...->...", [(2, 3, 5)]),
        ("ii", [(1, 1)]),
        ("ii", [(5, 5)]),
        ("..., ...", [(), ()]),
        ("..., ...", [(3, 5), (2, 3, 5)]),
        ("...i, ...i", [(2, 3, 5), (5,)]),
        ("i..., i...", [(5, 3, 2), (5,)]),
        ("i,j", [(3,), (1,)]),
        ("i,j", [(3,), (5,)]),
        ("ij, j", [(4, 5), (5,)]),
        ("ji,j", [(5, 4), (5,)]),
        ("ij,jk", [(4, 1), (1, 6)]),
        ("ij,jk", [(4, 5), (5, 6)]),
        ("ij,jk,kl", [(3, 4), (4, 5), (5, 6)]),
        ("ijk, jil -> kl", [(3, 4, 5), (4, 3, 2)]),
        ("i,i,i->i", [(8,), (8,), (8,)]),
        (",i->", [(), (9,)]),
        ("i,->", [(9,), ()]),
        ("...,...", [(5,), (5,)]),
        ("i,i", [(5,), (5,)]),
        ("i,->i", [(5,), ()]),
        (",i->i", [(), (5,)]),
        ("z,mz,zm->", [(2,), (2, 2), (2, 2)]),
        ("ij,ij->j", [(10, 2), (1, 2)]),
        ("i, i", [(2,), (1,)]),
        ("...ij,...jk->...ik", [(1, 5), (1, 5)]),
        ("...ij,...jk->...ik", [(1, 5), (5, 5)]),
        ("ji,i->", [(2, 2), (2,)]),
        ("i,ij->", [(2,), (2, 2)]),
        ("ij,i->", [(2, 2), (2,)]),
        ("ij...,j...->i...", [(1, 2), (2, 2, 1)]),
        ("...i,...i", [(3,), (3,)]),
        # (5, 12, 4, 2, 3) and (5, 12, 11) in NumPy's test: shrunk
        ("ijklm,ijn,ijn->", [(2, 3, 4, 2, 3), (2, 3, 5), (2, 3, 5)]),
        ("x,yx,zx->xzy", [(2,), (2, 2), (4, 2)]),
        ("ij...,j...->ij...", [(2, 3, 4), (3,)]),
        ("ij...,...j->ij...", [(2, 3, 4), (3,)]),
        ("ij...,j->ij...", [(2, 3, 4), (3,)]),
        ("ik...,k...->i...", [(4, 3), (3, 2)]),
        ("ik...,...kj->i...j", [(4, 3), (3, 2)]),
        ("...k,kj", [(4, 3), (3, 2)]),
        ("ik,k...->i...", [(4, 3), (3, 2)]),
        ("ijkl,k", [(2, 3, 4, 5), (4,)]),
        ("...kl,k", [(2, 3, 4, 5), (4,)]),
        ("...kl,k...", [(2, 3, 4, 5), (4,)]),
        # J, K, M = 160, 160, 120 in NumPy's test: shrunk
        ("...lmn,...lmno->...o", [(1, 1, 1, 2, 3, 2), (2, 3, 2, 3)]),
        ("...lmn,lmno->...o", [(1, 1, 1, 2, 3, 2), (2, 3, 2, 3)]),
        ("cl, cpx->lpx", [(2, 3), (2, 3, 7)]),
        ("cl, cpxy->lpxy", [(3, 3), (3, 3, 4, 4)]),
        ("aabb->ab", [(5, 5, 5, 5)]),
        ("ijij->", [(4, 4, 4, 4)]),
        ("mi,mi,mi->m", [(5, 5), (5, 5), (5, 5)]),
        ("i->", [(24,)]),
        ("i,i->i", [(24,), (24,)]),
        ("i,i->", [(24,), (24,)]),
        ("i,i,i->", [(24,), (24,), (24,)]),
        ("i,i,i,i->", [(24,), (24,), (24,), (24,)]),
        ("bbcdc->d", [(1, 1, 3, 1, 3)]),
        ("ijk,kl,jl", [(1, 5, 4), (4, 6), (5, 6)]),
        ("ijk,kl,jl,i->i", [(1, 5, 4), (4, 6), (5, 6), (10,)]),
        ("abjk,kl,jl", [(1, 1, 5, 4), (4, 6), (5, 6)]),
        ("abjk,kl,jl,ab->ab", [(1, 1, 5, 4), (4, 6), (5, 6), (7, 7)]),
        ("obk,ijk->ioj", [(2, 4, 8), (2, 4, 8)]),
        ("...ft,mf->...mt", [(2, 3, 5), (4, 3)]),
        ("ijp,ipq,ikq->ijk", [(3, 1, 1), (3, 1, 3), (1, 3, 3)]),
        (
            "jhcabhijaci,dfijejgh->fgje",
            [(1, 1, 1, 1, 3, 1, 1, 1, 1, 1, 1), (3, 1, 3, 1, 1, 1, 1, 2)],
        ),
        (
            "baegffahgc,hdggeff->dhg",
            [(2, 1, 4, 1, 1, 1, 1, 2, 1, 1), (1, 1, 1, 1, 4, 1, 1)],
        ),
        (
            "cehgbaifff,fhhdegih->cdghbi",
            [(1, 1, 1, 1, 1, 1, 1, 1, 1, 1), (2, 1, 1, 2, 4, 1, 1, 1)],
        ),
        ("gah,cdbcghefg->ef", [(2, 3, 1), (1, 3, 1, 1, 1, 2, 1, 4, 1)]),
        ("cacc,bcb->", [(1, 1, 1, 1), (1, 4, 1)]),
        # (20 per label in NumPy's path test: 4 here)
        (
            "a,ac,ab,ad,cd,bd,bc->",
            [(4,), (4, 4), (4, 4), (4, 4), (4, 4), (4, 4), (4, 4)],
        ),
        (" ... a -> ... a ", [(1, 1)]),
    ]
]

# torch: test_einsum (x 5, y 7, A 3x5, B 2x5, C 2x3x5, D 2x5x7, E 7x9, F 2x3x3x5,
# G 5x4x6, H 4x4, I 2x3x2) and test_einsum_corner_cases
_X, _Y, _A, _B, _C = (5,), (7,), (3, 5), (2, 5), (2, 3, 5)
_D, _E, _F, _G, _H, _I = (2, 5, 7), (7, 9), (2, 3, 3, 5), (5, 4, 6), (4, 4), (2, 3, 2)
CORPUS += [
    ("torch", eq, shapes)
    for eq, shapes in [
        ("i->", [_X]),
        ("i,i->", [_X, _X]),
        ("i,i->i", [_X, _X]),
        ("i,j->ij", [_X, _Y]),
        ("ij->ji", [_A]),
        ("ij->j", [_A]),
        ("ij->i", [_A]),
        ("ij,ij->ij", [_A, _A]),
        ("ij,j->i", [_A, _X]),
        ("ij,kj->ik", [_A, _B]),
        ("ij,ab->ijab", [_A, _E]),
        ("Aij,Ajk->Aik", [_C, _D]),
        ("ijk,jk->i", [_C, _A]),
        ("aij,jk->aik", [_D, _E]),
        ("abcd,dfg->abcfg", [_F, _G]),
        ("ijk,ik->j", [_C, _B]),
        ("ijk,ik->jk", [_C, _B]),
        ("ii", [_H]),
        ("ii->i", [_H]),
        ("iji->j", [_I]),
        ("ngrg...->nrg...", [(2, 1, 3, 1, 4)]),
        ("i...->...", [_H]),
        ("ki,...k->i...", [(5, 3), _B]),
        ("k...,jk->...", [(5, 3), _B]),
        ("...ik, ...j -> ...ij", [_C, _X]),
        ("Bik,k...j->i...j", [_C, (5, 3)]),
        ("i...j, ij... -> ...ij", [_C, (2, 5, 2, 3)]),
        ("bn,anm,bm->ba", [(5, 10), (15, 10, 20), (5, 20)]),
        ("...,be,b...,beg,gi,bc...->bi...", [_A, _B, _C, _D, _E, _F]),
        # corner cases
        (" ", [()]),
        (" -> ", [()]),
        (" , ", [(), ()]),
        (" , , ", [(), (), ()]),
        (" , -> ", [(), ()]),
        (" i ", [(1,)]),
        (" i -> ", [(1,)]),
        (" i -> i ", [(1,)]),
        (" i , i ", [(1,), (1,)]),
        (" i , i -> i ", [(1,), (1,)]),
        ("i", [(0,)]),
        (" i j -> j", [(2, 0)]),
        ("ij->i", [(2, 0)]),
        (" i j k  ,  k  -> i j ", [(2, 3, 0), (0,)]),
        ("i,j", [(1,), (2,)]),
        ("i,ij->ij", [(2,), (2, 3)]),
        ("...", [()]),
        ("...->", [()]),
        ("...->...", [()]),
        ("...", [(1,)]),
        ("...->", [(1,)]),
        ("z...->z", [(1,)]),
        ("Z...->...Z", [(1,)]),
        ("...a->", [(2, 1)]),
        ("a...b->ab", [(2, 2, 1)]),
    ]
]

# issue #17: an explicit output without '...' sums the '...' axes
CORPUS += [
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
