/* crm._leaves: the per-row loops of dataset hashing, in C (crm/leaves.py is the Python twin).
 *
 * split_rows cuts simple CSV lines into fields, hash_rows hashes each row's concatenated pieces
 * (the canonical leaf with its 0x00 prefix) and perfect_root folds 2**k leaf hashes into their
 * RFC 6962 root. SHA-256 is OpenSSL's (libcrypto.so.3, the library Python's hashlib already
 * loads), found with dlopen at import so no OpenSSL headers are needed to build; if it is not
 * there the import fails and crm.leaves uses its Python twin.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <string.h>

typedef struct {
    unsigned char opaque[256]; /* larger than OpenSSL's SHA256_CTX (112 bytes) */
} sha_ctx;

static int (*sha_init)(sha_ctx *);
static int (*sha_update)(sha_ctx *, const void *, size_t);
static int (*sha_final)(unsigned char *, sha_ctx *);

static int load_sha(void) {
    const char *names[] = {"libcrypto.so.3", "libcrypto.so", NULL};
    for (int i = 0; names[i]; i++) {
        void *lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib) continue;
        sha_init = (int (*)(sha_ctx *))dlsym(lib, "SHA256_Init");
        sha_update = (int (*)(sha_ctx *, const void *, size_t))dlsym(lib, "SHA256_Update");
        sha_final = (int (*)(unsigned char *, sha_ctx *))dlsym(lib, "SHA256_Final");
        if (sha_init && sha_update && sha_final) return 0;
    }
    PyErr_SetString(PyExc_ImportError, "crm._leaves: no libcrypto with SHA256_Init found");
    return -1;
}

/* hash_rows(columns: list[list[bytes]]) -> bytes: SHA-256 of each row's pieces joined. */
static PyObject *hash_rows(PyObject *self, PyObject *columns) {
    if (!PyList_Check(columns) || PyList_GET_SIZE(columns) == 0) {
        PyErr_SetString(PyExc_TypeError, "columns must be a non-empty list of lists of bytes");
        return NULL;
    }
    Py_ssize_t width = PyList_GET_SIZE(columns), rows = -1;
    for (Py_ssize_t c = 0; c < width; c++) {
        PyObject *col = PyList_GET_ITEM(columns, c);
        if (!PyList_Check(col) || (rows >= 0 && PyList_GET_SIZE(col) != rows)) {
            PyErr_SetString(PyExc_TypeError, "columns must be lists of the same length");
            return NULL;
        }
        rows = PyList_GET_SIZE(col);
        for (Py_ssize_t r = 0; r < rows; r++) {
            if (!PyBytes_Check(PyList_GET_ITEM(col, r))) {
                PyErr_SetString(PyExc_TypeError, "pieces must be bytes");
                return NULL;
            }
        }
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, rows * 32);
    if (!out) return NULL;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    sha_ctx ctx;
    for (Py_ssize_t r = 0; r < rows; r++) {
        sha_init(&ctx);
        for (Py_ssize_t c = 0; c < width; c++) {
            PyObject *piece = PyList_GET_ITEM(PyList_GET_ITEM(columns, c), r);
            sha_update(&ctx, PyBytes_AS_STRING(piece), (size_t)PyBytes_GET_SIZE(piece));
        }
        sha_final(dst + r * 32, &ctx);
    }
    return out;
}

/* perfect_root(leaf_hashes: bytes) -> bytes: root of 2**k concatenated 32-byte hashes. */
static PyObject *perfect_root(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Py_ssize_t count = view.len / 32;
    if (view.len % 32 || count < 1 || (count & (count - 1))) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "not a power-of-two count of 32-byte hashes");
        return NULL;
    }
    unsigned char *level = PyMem_Malloc((size_t)view.len);
    if (!level) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    memcpy(level, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    static const unsigned char node_prefix = 1;
    sha_ctx ctx;
    Py_BEGIN_ALLOW_THREADS
    for (; count > 1; count /= 2) {
        for (Py_ssize_t i = 0; i < count / 2; i++) {
            unsigned char pair[64];
            memcpy(pair, level + i * 64, 64);
            sha_init(&ctx);
            sha_update(&ctx, &node_prefix, 1);
            sha_update(&ctx, pair, 64);
            sha_final(level + i * 32, &ctx);
        }
    }
    Py_END_ALLOW_THREADS
    PyObject *root = PyBytes_FromStringAndSize((const char *)level, 32);
    PyMem_Free(level);
    return root;
}

/* One line of `width` fields from `p`: unquoted fields without '"' or NUL, or quoted fields
 * ("" escapes, no CR, LF or NUL inside) followed by ',' or the line end, ending in LF or CRLF.
 * On such lines csv.reader and this cut agree. Returns the position after the line, or -1. */
static Py_ssize_t cut_line(int kind, const void *data, Py_ssize_t p, Py_ssize_t end,
                           Py_ssize_t width, Py_ssize_t *starts, Py_ssize_t *stops) {
    Py_ssize_t fields = 0;
    for (;;) {
        if (fields == width) return -1;
        Py_ssize_t start = p;
        if (p < end && PyUnicode_READ(kind, data, p) == '"') {
            for (p++;; p++) {
                if (p >= end) return -1;
                Py_UCS4 c = PyUnicode_READ(kind, data, p);
                if (c == '\r' || c == '\n' || c == 0) return -1;
                if (c == '"') {
                    if (p + 1 < end && PyUnicode_READ(kind, data, p + 1) == '"') {
                        p++;
                        continue;
                    }
                    p++;
                    break;
                }
            }
        } else {
            for (; p < end; p++) {
                Py_UCS4 c = PyUnicode_READ(kind, data, p);
                if (c == ',' || c == '\r' || c == '\n') break;
                if (c == '"' || c == 0) return -1;
            }
        }
        starts[fields] = start;
        stops[fields] = p;
        fields++;
        if (p >= end) return -1;
        Py_UCS4 c = PyUnicode_READ(kind, data, p);
        if (c == ',') {
            p++;
            continue;
        }
        if (fields != width) return -1;
        if (c == '\n') return p + 1;
        if (c == '\r' && p + 1 < end && PyUnicode_READ(kind, data, p + 1) == '\n') return p + 2;
        return -1;
    }
}

/* split_rows(text, pos, end, width, max_rows) -> (columns, stop): the fields of the simple
 * lines from pos, column-wise, up to the first line that is not simple (or max_rows). */
static PyObject *split_rows(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t pos, end, width, max_rows;
    if (!PyArg_ParseTuple(args, "Unnnn", &text, &pos, &end, &width, &max_rows)) return NULL;
    if (width < 1 || width > 4096 || pos < 0 || end > PyUnicode_GET_LENGTH(text) || pos > end) {
        PyErr_SetString(PyExc_ValueError, "bad width or range");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t *starts = PyMem_Malloc(sizeof(Py_ssize_t) * 2 * (size_t)width);
    PyObject *columns = PyList_New(width);
    if (!starts || !columns) goto fail;
    Py_ssize_t *stops = starts + width;
    for (Py_ssize_t c = 0; c < width; c++) {
        PyObject *col = PyList_New(0);
        if (!col) goto fail;
        PyList_SET_ITEM(columns, c, col);
    }
    for (Py_ssize_t rows = 0; rows < max_rows && pos < end; rows++) {
        Py_ssize_t next = cut_line(kind, data, pos, end, width, starts, stops);
        if (next < 0) break;
        for (Py_ssize_t c = 0; c < width; c++) {
            PyObject *col = PyList_GET_ITEM(columns, c);
            Py_ssize_t n = PyList_GET_SIZE(col), len = stops[c] - starts[c];
            /* A value equal to the row above's is the same object: its hash is cached, so the
             * caller's dict lookup is cheap (invoices repeat date, customer and country). */
            PyObject *above = n ? PyList_GET_ITEM(col, n - 1) : NULL;
            if (above && PyUnicode_GET_LENGTH(above) == len && PyUnicode_KIND(above) == kind
                && !memcmp(PyUnicode_DATA(above), (const char *)data + starts[c] * kind,
                           (size_t)(len * kind))) {
                if (PyList_Append(col, above) < 0) goto fail;
                continue;
            }
            PyObject *field = PyUnicode_Substring(text, starts[c], stops[c]);
            if (!field) goto fail;
            int err = PyList_Append(col, field);
            Py_DECREF(field);
            if (err < 0) goto fail;
        }
        pos = next;
    }
    PyMem_Free(starts);
    return Py_BuildValue("(Nn)", columns, pos);
fail:
    PyMem_Free(starts);
    Py_XDECREF(columns);
    return PyErr_Occurred() ? NULL : PyErr_NoMemory();
}

static PyMethodDef methods[] = {
    {"hash_rows", hash_rows, METH_O, "SHA-256 of each row's pieces joined, concatenated."},
    {"perfect_root", perfect_root, METH_O, "RFC 6962 root of 2**k concatenated leaf hashes."},
    {"split_rows", split_rows, METH_VARARGS, "Fields of simple CSV lines, column-wise."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "crm._leaves", NULL, -1, methods};

PyMODINIT_FUNC PyInit__leaves(void) {
    if (load_sha() < 0) return NULL;
    return PyModule_Create(&module);
}
