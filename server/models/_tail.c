/* server.models._tail: the elementwise arithmetic that follows a model's tree ensemble, row by row, in C
 * (tail.py beside it compiles the ONNX nodes into the program this runs).
 *
 * A call of a few rows pays onnxruntime's fixed cost per session run (~15-20 us, and its
 * working set evicts the server's from cache) for a graph that is a few dozen float32
 * operations per row. Here each row's values live in a small array of registers: the
 * constants first (copied once), then the tree sum, then one register per node output.
 * Every operation is the float32 operation the ONNX operator defines, in the graph's order,
 * with no contraction into fused multiply-adds (built with -ffp-contract=off), so + - * /, max,
 * min, comparisons and selections give onnxruntime's bits; log, exp and the logistic use the C
 * library's logf and expf, which can differ from onnxruntime's own kernels in the last place
 * (tail.py bounds that at load).
 *
 * run_tail(x, sums, out, program, constants, n_features, registers, output)
 *   x          float32 [N * n_features], row-major (the model's input)
 *   sums       float32 [N] (the tree ensemble's output)
 *   out        writable float32 [N]
 *   program    int32 [K * 5]: (opcode, destination, a, b, c) register numbers; for LOAD, a is
 *              the feature's column. The module's OPCODES dict names each opcode (the ONNX
 *              operator it computes; "load" reads a feature column) and MAX_REGISTERS bounds
 *              `registers`: tail.py builds programs from these, so they are defined here only
 *   constants  float32 [C]: registers 0..C-1; the tree sum is register C
 * Register numbers and columns are checked once per call (the program is a few dozen steps).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

enum {
    OP_LOAD = 0,
    OP_ADD = 1,
    OP_SUB = 2,
    OP_MUL = 3,
    OP_DIV = 4,
    OP_MAX = 5,
    OP_MIN = 6,
    OP_LOG = 7,
    OP_EXP = 8,
    OP_SIGMOID = 9,
    OP_GREATER = 10,
    OP_LESS = 11,
    OP_WHERE = 12,
    OP_CLIP = 13,
    OP_NEG = 14,
};

#define MAX_REGISTERS 1024

static int run_rows(const float *x, const float *sums, float *out, Py_ssize_t rows,
                    const int32_t *program, Py_ssize_t steps, const float *constants,
                    Py_ssize_t n_constants, Py_ssize_t width, Py_ssize_t output) {
    float r[MAX_REGISTERS];
    memcpy(r, constants, (size_t)n_constants * sizeof(float));
    for (Py_ssize_t row = 0; row < rows; row++) {
        const float *features = x + row * width;
        r[n_constants] = sums[row];
        for (Py_ssize_t k = 0; k < steps; k++) {
            const int32_t *p = program + 5 * k;
            const float a = r[p[2]], b = r[p[3]];
            float v;
            switch (p[0]) {
            case OP_LOAD: v = features[p[2]]; break;
            case OP_ADD: v = a + b; break;
            case OP_SUB: v = a - b; break;
            case OP_MUL: v = a * b; break;
            case OP_DIV: v = a / b; break;
            case OP_MAX: v = a < b ? b : a; break;
            case OP_MIN: v = b < a ? b : a; break;
            case OP_LOG: v = logf(a); break;
            case OP_EXP: v = expf(a); break;
            case OP_SIGMOID: v = 1.0f / (1.0f + expf(-a)); break;
            case OP_GREATER: v = a > b ? 1.0f : 0.0f; break;
            case OP_LESS: v = a < b ? 1.0f : 0.0f; break;
            case OP_WHERE: v = a != 0.0f ? b : r[p[4]]; break;
            case OP_CLIP: v = a < b ? b : a; v = r[p[4]] < v ? r[p[4]] : v; break;
            case OP_NEG: v = -a; break;
            default: return -1;
            }
            r[p[1]] = v;
        }
        out[row] = r[output];
    }
    return 0;
}

static PyObject *run_tail(PyObject *self, PyObject *args) {
    Py_buffer xv, sv, ov, pv, cv;
    Py_ssize_t width, registers, output;
    if (!PyArg_ParseTuple(args, "y*y*w*y*y*nnn", &xv, &sv, &ov, &pv, &cv, &width, &registers,
                          &output))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t rows = sv.len / (Py_ssize_t)sizeof(float);
    const Py_ssize_t n_constants = cv.len / (Py_ssize_t)sizeof(float);
    if (width <= 0 || xv.len != rows * width * (Py_ssize_t)sizeof(float) || ov.len != sv.len ||
        pv.len % (5 * (Py_ssize_t)sizeof(int32_t)) || registers > MAX_REGISTERS ||
        n_constants >= registers || output < 0 || output >= registers) {
        PyErr_SetString(PyExc_ValueError, "run_tail: buffers do not fit the program");
        goto done;
    }
    const Py_ssize_t steps = pv.len / (5 * (Py_ssize_t)sizeof(int32_t));
    const int32_t *program = pv.buf;
    for (Py_ssize_t k = 0; k < steps; k++) { /* a bad program must not write outside r[] */
        const int32_t *p = program + 5 * k;
        int bad = p[1] <= n_constants || p[1] >= registers;
        for (int j = 2; j < 5; j++)
            bad |= p[j] < 0 || p[j] >= (p[0] == OP_LOAD && j == 2 ? width : registers);
        if (bad) {
            PyErr_SetString(PyExc_ValueError, "run_tail: a register or column is out of range");
            goto done;
        }
    }
    if (run_rows(xv.buf, sv.buf, ov.buf, rows, pv.buf, steps, cv.buf, n_constants, width,
                 output)) {
        PyErr_SetString(PyExc_ValueError, "run_tail: unknown opcode");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&xv);
    PyBuffer_Release(&sv);
    PyBuffer_Release(&ov);
    PyBuffer_Release(&pv);
    PyBuffer_Release(&cv);
    return result;
}

static PyMethodDef methods[] = {
    {"run_tail", run_tail, METH_VARARGS,
     "run_tail(x, sums, out, program, constants, n_features, registers, output)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "server.models._tail", NULL, -1, methods};

static const struct {
    const char *name;
    int code;
} opcodes[] = {
    {"load", OP_LOAD},       {"Add", OP_ADD},         {"Sub", OP_SUB},   {"Mul", OP_MUL},
    {"Div", OP_DIV},         {"Max", OP_MAX},         {"Min", OP_MIN},   {"Log", OP_LOG},
    {"Exp", OP_EXP},         {"Sigmoid", OP_SIGMOID}, {"Greater", OP_GREATER},
    {"Less", OP_LESS},       {"Where", OP_WHERE},     {"Clip", OP_CLIP}, {"Neg", OP_NEG},
};

PyMODINIT_FUNC PyInit__tail(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyObject *codes = PyDict_New();
    int failed = codes == NULL;
    for (size_t i = 0; !failed && i < sizeof opcodes / sizeof opcodes[0]; i++) {
        PyObject *code = PyLong_FromLong(opcodes[i].code);
        failed = code == NULL || PyDict_SetItemString(codes, opcodes[i].name, code) < 0;
        Py_XDECREF(code);
    }
    if (failed || PyModule_AddObjectRef(m, "OPCODES", codes) < 0 ||
        PyModule_AddIntConstant(m, "MAX_REGISTERS", MAX_REGISTERS) < 0) {
        Py_XDECREF(codes);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(codes);
    return m;
}
