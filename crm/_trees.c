/* crm._trees: a tree ensemble's sum of leaf values, per row, in C (crm/trees.py drives it).
 *
 * crm.trees flattens a TreeEnsembleRegressor into complete binary trees of one depth D: tree t
 * has 2**D - 1 split slots (node i's children are 2i+1 when the split is true, 2i+2 when it is
 * false; a leaf above depth D is copied into every slot below it) and 2**D leaf values. So a
 * row's walk down a tree is D steps without branches, and rows are taken in blocks: every tree
 * visits a block of rows while its few hundred bytes stay in L1, eight rows at a time so the
 * eight walks overlap. Each row's sum adds the trees in their order from 0.0f and then the
 * base value, in float32: onnxruntime's order, so the sums are bitwise the same. The last
 * rows % 8 rows of a block (a single-row call, say) overlap eight trees' walks instead, still
 * adding the leaves in tree order.
 *
 * sum_trees(x, out, splits, leaves, missing, n_features, depth, leq, base)
 *   x        float32 [N * n_features], row-major
 *   out      writable float32 [N]
 *   splits   [T * (2**D - 1)] of {int32 feature, float32 threshold}
 *   leaves   float32 [T * 2**D]
 *   missing  b"" (no node sends NaN to its true branch) or uint8 [T * (2**D - 1)], 1 where it does
 *   leq      0: true when x < threshold (BRANCH_LT); 1: x <= threshold (BRANCH_LEQ)
 * The caller guarantees 0 <= feature < n_features for every split (TreeEnsemble checks it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    int32_t feature;
    float threshold;
} split_t;

#define BLOCK 128
#define LANES 8

/* One step down: the next slot index from slot i for value v. */
#define STEP(i, v, s, m, LEQ, MISS)                                                   \
    do {                                                                              \
        float v_ = (v);                                                               \
        int true_ = (LEQ) ? (v_ <= (s)[i].threshold) : (v_ < (s)[i].threshold);       \
        if (MISS) true_ |= (m)[i] & (v_ != v_);                                       \
        i = 2 * i + 2 - (unsigned)true_;                                              \
    } while (0)

static inline __attribute__((always_inline)) void sum_block(
    const float *x, Py_ssize_t rows, Py_ssize_t width, const split_t *splits,
    const float *leaves, const uint8_t *missing, Py_ssize_t trees, int depth, float *acc,
    const int leq, const int miss) {
    const unsigned inner = (1u << depth) - 1u;
    const Py_ssize_t full = rows - rows % LANES;
    for (Py_ssize_t t = 0; t < trees; t++) { /* eight rows' walks down one tree overlap */
        const split_t *s = splits + t * inner;
        const float *leaf = leaves + t * (inner + 1u);
        const uint8_t *m = miss ? missing + t * inner : NULL;
        for (Py_ssize_t r = 0; r < full; r += LANES) {
            const float *row = x + r * width;
            unsigned i0 = 0, i1 = 0, i2 = 0, i3 = 0, i4 = 0, i5 = 0, i6 = 0, i7 = 0;
            for (int d = 0; d < depth; d++) {
                STEP(i0, row[0 * width + s[i0].feature], s, m, leq, miss);
                STEP(i1, row[1 * width + s[i1].feature], s, m, leq, miss);
                STEP(i2, row[2 * width + s[i2].feature], s, m, leq, miss);
                STEP(i3, row[3 * width + s[i3].feature], s, m, leq, miss);
                STEP(i4, row[4 * width + s[i4].feature], s, m, leq, miss);
                STEP(i5, row[5 * width + s[i5].feature], s, m, leq, miss);
                STEP(i6, row[6 * width + s[i6].feature], s, m, leq, miss);
                STEP(i7, row[7 * width + s[i7].feature], s, m, leq, miss);
            }
            acc[r + 0] += leaf[i0 - inner];
            acc[r + 1] += leaf[i1 - inner];
            acc[r + 2] += leaf[i2 - inner];
            acc[r + 3] += leaf[i3 - inner];
            acc[r + 4] += leaf[i4 - inner];
            acc[r + 5] += leaf[i5 - inner];
            acc[r + 6] += leaf[i6 - inner];
            acc[r + 7] += leaf[i7 - inner];
        }
    }
    for (Py_ssize_t r = full; r < rows; r++) { /* fewer than eight rows left: eight trees'
                                                   walks overlap, their leaves added in order */
        const float *row = x + r * width;
        float sum = acc[r];
        Py_ssize_t t = 0;
        for (; t + LANES <= trees; t += LANES) {
            const split_t *s = splits + t * inner;
            const uint8_t *m = miss ? missing + t * inner : NULL;
            unsigned i[LANES] = {0};
            for (int d = 0; d < depth; d++) {
#pragma GCC unroll 8
                for (int k = 0; k < LANES; k++) {
                    const split_t *sk = s + k * inner;
                    const uint8_t *mk = miss ? m + k * inner : NULL;
                    STEP(i[k], row[sk[i[k]].feature], sk, mk, leq, miss);
                }
            }
#pragma GCC unroll 8
            for (int k = 0; k < LANES; k++) sum += leaves[(t + k) * (inner + 1u) + i[k] - inner];
        }
        for (; t < trees; t++) {
            const split_t *s = splits + t * inner;
            const uint8_t *m = miss ? missing + t * inner : NULL;
            unsigned i = 0;
            for (int d = 0; d < depth; d++) STEP(i, row[s[i].feature], s, m, leq, miss);
            sum += leaves[t * (inner + 1u) + i - inner];
        }
        acc[r] = sum;
    }
}

/* The four comparison variants, each compiled with its constants folded in. */
#define VARIANT(name, LEQ, MISS)                                                           \
    static void name(const float *x, Py_ssize_t rows, Py_ssize_t width, const split_t *s,  \
                     const float *leaves, const uint8_t *m, Py_ssize_t trees, int depth,   \
                     float *acc) {                                                         \
        sum_block(x, rows, width, s, leaves, m, trees, depth, acc, LEQ, MISS);             \
    }
VARIANT(sum_lt, 0, 0)
VARIANT(sum_leq, 1, 0)
VARIANT(sum_lt_missing, 0, 1)
VARIANT(sum_leq_missing, 1, 1)

typedef void (*sum_fn)(const float *, Py_ssize_t, Py_ssize_t, const split_t *, const float *,
                       const uint8_t *, Py_ssize_t, int, float *);

static PyObject *sum_trees(PyObject *self, PyObject *args) {
    Py_buffer xv, outv, sv, lv, mv;
    Py_ssize_t width;
    int depth, leq;
    float base;
    if (!PyArg_ParseTuple(args, "y*w*y*y*y*nipf", &xv, &outv, &sv, &lv, &mv, &width, &depth,
                          &leq, &base))
        return NULL;
    PyObject *result = NULL;
    if (depth < 1 || depth > 16 || width < 1) {
        PyErr_SetString(PyExc_ValueError, "depth must be 1..16 and n_features positive");
        goto done;
    }
    Py_ssize_t inner = ((Py_ssize_t)1 << depth) - 1;
    Py_ssize_t trees = lv.len / (Py_ssize_t)sizeof(float) / (inner + 1);
    Py_ssize_t rows = xv.len / (Py_ssize_t)sizeof(float) / width;
    if (xv.len != rows * width * (Py_ssize_t)sizeof(float) ||
        outv.len != rows * (Py_ssize_t)sizeof(float) ||
        lv.len != trees * (inner + 1) * (Py_ssize_t)sizeof(float) ||
        sv.len != trees * inner * (Py_ssize_t)sizeof(split_t) ||
        (mv.len != 0 && mv.len != trees * inner)) {
        PyErr_SetString(PyExc_ValueError, "buffer sizes do not match n_features and depth");
        goto done;
    }
    /* every split's feature is < n_features: crm.trees.TreeEnsemble checks it once, when it
     * is built, rather than here on every call (9,300 splits for the churn model) */
    const split_t *splits = (const split_t *)sv.buf;
    const int miss = mv.len != 0;
    sum_fn fn = leq ? (miss ? sum_leq_missing : sum_leq) : (miss ? sum_lt_missing : sum_lt);
    const float *x = (const float *)xv.buf;
    float *out = (float *)outv.buf;
    Py_BEGIN_ALLOW_THREADS;
    float acc[BLOCK];
    for (Py_ssize_t r0 = 0; r0 < rows; r0 += BLOCK) {
        Py_ssize_t n = rows - r0 < BLOCK ? rows - r0 : BLOCK;
        for (Py_ssize_t r = 0; r < n; r++) acc[r] = 0.0f;
        fn(x + r0 * width, n, width, splits, (const float *)lv.buf, (const uint8_t *)mv.buf,
           trees, depth, acc);
        for (Py_ssize_t r = 0; r < n; r++) out[r0 + r] = acc[r] + base;
    }
    Py_END_ALLOW_THREADS;
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&xv);
    PyBuffer_Release(&outv);
    PyBuffer_Release(&sv);
    PyBuffer_Release(&lv);
    PyBuffer_Release(&mv);
    return result;
}

static PyMethodDef methods[] = {
    {"sum_trees", sum_trees, METH_VARARGS,
     "sum_trees(x, out, splits, leaves, missing, n_features, depth, leq, base): per-row sums."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "crm._trees", NULL, -1, methods};

PyMODINIT_FUNC PyInit__trees(void) { return PyModule_Create(&module); }
