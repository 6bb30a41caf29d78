/* rq_core._native: the bin-and-collapse pass of randomized quantization as one compiled loop.
 *
 * The torch path of rq_core.quantize makes one vectorised comparison pass per cut point; this
 * kernel reads every element once, counts the cuts at or below it with the cuts in registers /
 * L1, and writes the bin's value. It bins against the very tables rq_core.quantize.bin_tables
 * computes and uses the same predicate (cut <= x, in the compute dtype), so its output is bit
 * for bit the torch path's. float32 and float64 only (half inputs take the torch path).
 *
 * Tensors cross the boundary as raw addresses (tensor.data_ptr()); the Python side
 * (rq_core.quantize._native_*) checks dtype, contiguity, shapes and bounds before calling, and
 * the loops run with the GIL released so several threads can share one call's rows.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Up to this many cuts the bin value is picked by a chain of selects (cuts are sorted, so
 * "x >= cut k ? value k+1 : so far" ends at value[number of cuts <= x]); it vectorises over a
 * run of elements that share a table. Above it, a branchless upper-bound search per element.
 * The crossovers were measured on x86-64 with AVX2: ~24 cuts where a channel's elements are
 * contiguous, ~32 for channels last (the search there walks a different table per element)
 * and for packed rows (whose columns are copied out to a run first). */
#define LINEAR_MAX_CUTS 32
#define CONTIGUOUS_LINEAR_MAX_CUTS 24
/* Elements per pass of the select chain: the run stays in L1 across the n-1 passes. */
#define RUN 512

/* Compiled for AVX2 and for the baseline; the loader picks one at run time (GCC ifunc). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define MULTIVERSION
#endif

#define DEFINE_KERNELS(T, SUFFIX)                                                              \
    static inline int64_t count_le_##SUFFIX(const T *cuts, int64_t n1, T v) {                 \
        if (n1 == 0) return 0;                                                                 \
        const T *base = cuts;                                                                  \
        int64_t len = n1;                                                                      \
        while (len > 1) {                                                                      \
            int64_t half = len / 2;                                                            \
            base = (base[half] <= v) ? base + half : base;                                     \
            len -= half;                                                                       \
        }                                                                                      \
        return (int64_t)(base - cuts) + (*base <= v);                                          \
    }                                                                                          \
                                                                                               \
    /* One run of m elements sharing one table (cuts cc, values vc; strides 1). */            \
    static inline void select_run_##SUFFIX(const T *restrict x, T *restrict o, int64_t m,     \
                                           const T *cc, const T *vc, int64_t n1) {           \
        const T v0 = vc[0];                                                                    \
        for (int64_t i = 0; i < m; ++i) o[i] = v0;                                             \
        for (int64_t k = 0; k < n1; ++k) {                                                     \
            const T ck = cc[k], vk = vc[k + 1];                                                \
            for (int64_t i = 0; i < m; ++i) o[i] = (x[i] >= ck) ? vk : o[i];                   \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* x, out: (S, A, C, B) contiguous, B > 1; rows r0..r1 of the flattened (S*A) axis. */    \
    MULTIVERSION                                                                               \
    static void bin_regular_##SUFFIX(const T *x, T *out, int64_t A, int64_t C, int64_t B,     \
                                     const T *cuts, const T *values, int64_t n1,               \
                                     const uint8_t *gate, int64_t r0, int64_t r1) {           \
        const int64_t n = n1 + 1, row_len = C * B;                                             \
        for (int64_t r = r0; r < r1; ++r) {                                                    \
            const int64_t s = r / A;                                                           \
            const T *xr = x + r * row_len;                                                     \
            T *orow = out + r * row_len;                                                       \
            if (gate && !gate[s]) {                                                            \
                memcpy(orow, xr, (size_t)row_len * sizeof(T));                                 \
                continue;                                                                      \
            }                                                                                  \
            for (int64_t c = 0; c < C; ++c) {                                                  \
                const T *cc = cuts + (s * C + c) * n1, *vc = values + (s * C + c) * n;         \
                const T *xc = xr + c * B;                                                      \
                T *oc = orow + c * B;                                                          \
                if (n1 <= CONTIGUOUS_LINEAR_MAX_CUTS) {                                        \
                    for (int64_t b0 = 0; b0 < B; b0 += RUN)                                    \
                        select_run_##SUFFIX(xc + b0, oc + b0, B - b0 < RUN ? B - b0 : RUN, cc, \
                                            vc, n1);                                           \
                } else {                                                                       \
                    for (int64_t b = 0; b < B; ++b)                                            \
                        oc[b] = vc[count_le_##SUFFIX(cc, n1, xc[b])];                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* x, out: (S, A, C) contiguous (channels last); tables transposed per sample: cuts_t     \
     * (S, n1, C), values_t (S, n, C), so one select chain runs along the channels. */        \
    MULTIVERSION                                                                               \
    static void bin_channels_last_##SUFFIX(const T *x, T *out, int64_t A, int64_t C,          \
                                           const T *cuts_t, const T *values_t, int64_t n1,     \
                                           const uint8_t *gate, int64_t r0, int64_t r1) {     \
        const int64_t n = n1 + 1;                                                              \
        for (int64_t r = r0; r < r1; ++r) {                                                    \
            const int64_t s = r / A;                                                           \
            const T *restrict xr = x + r * C;                                                  \
            T *restrict orow = out + r * C;                                                    \
            if (gate && !gate[s]) {                                                            \
                memcpy(orow, xr, (size_t)C * sizeof(T));                                       \
                continue;                                                                      \
            }                                                                                  \
            const T *ct = cuts_t + s * n1 * C, *vt = values_t + s * n * C;                     \
            for (int64_t c = 0; c < C; ++c) orow[c] = vt[c];                                   \
            for (int64_t k = 0; k < n1; ++k) {                                                 \
                const T *restrict ck = ct + k * C, *restrict vk = vt + (k + 1) * C;            \
                for (int64_t c = 0; c < C; ++c) orow[c] = (xr[c] >= ck[c]) ? vk[c] : orow[c];  \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* Per-(segment, channel) min and max of a packed (N, C) batch, and rows per segment;   \
     * mn, mx (S, C) and counts (S) come zeroed/filled by the caller: mn = +inf, mx = -inf.  \
     * A NaN sticks once seen (every later comparison with it is false). */                  \
    static void segment_min_max_##SUFFIX(const T *x, int64_t N, int64_t C, const int64_t *seg, \
                                         T *mn, T *mx, int64_t *counts) {                      \
        for (int64_t r = 0; r < N; ++r) {                                                      \
            const int64_t s = seg[r];                                                          \
            const T *xr = x + r * C;                                                           \
            T *lo = mn + s * C, *hi = mx + s * C;                                              \
            counts[s] += 1;                                                                    \
            for (int64_t c = 0; c < C; ++c) {                                                  \
                const T v = xr[c];                                                             \
                if (v < lo[c] || v != v) lo[c] = v;                                            \
                if (v > hi[c] || v != v) hi[c] = v;                                            \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* x, out: (N, C) contiguous, seg: (N,) int64 table sample of each row; rows r0..r1.     \
     * Rows of one segment that follow each other (a sorted packed batch) are taken as a run:  \
     * each channel's column is copied out, select-chained, and copied back. */              \
    MULTIVERSION                                                                               \
    static void bin_segments_##SUFFIX(const T *x, T *out, int64_t C, const int64_t *seg,      \
                                      const T *cuts, const T *values, int64_t n1,              \
                                      const uint8_t *gate, int64_t r0, int64_t r1) {          \
        const int64_t n = n1 + 1;                                                              \
        T col[RUN], res[RUN];                                                                  \
        int64_t r = r0;                                                                        \
        while (r < r1) {                                                                       \
            const int64_t s = seg[r];                                                          \
            int64_t e = r + 1;                                                                 \
            while (e < r1 && e - r < RUN && seg[e] == s) ++e;                                  \
            const int64_t m = e - r;                                                           \
            const T *xr = x + r * C;                                                           \
            T *orow = out + r * C;                                                             \
            if (gate && !gate[s]) {                                                            \
                memcpy(orow, xr, (size_t)(m * C) * sizeof(T));                                 \
            } else if (n1 <= LINEAR_MAX_CUTS && m >= 16) {                                     \
                for (int64_t c = 0; c < C; ++c) {                                              \
                    for (int64_t i = 0; i < m; ++i) col[i] = xr[i * C + c];                    \
                    select_run_##SUFFIX(col, res, m, cuts + (s * C + c) * n1,                  \
                                        values + (s * C + c) * n, n1);                         \
                    for (int64_t i = 0; i < m; ++i) orow[i * C + c] = res[i];                  \
                }                                                                              \
            } else {                                                                           \
                const T *cs = cuts + s * C * n1, *vs = values + s * C * n;                     \
                for (int64_t i = 0; i < m; ++i)                                                \
                    for (int64_t c = 0; c < C; ++c)                                            \
                        orow[i * C + c] =                                                      \
                            vs[c * n + count_le_##SUFFIX(cs + c * n1, n1, xr[i * C + c])];     \
            }                                                                                  \
            r = e;                                                                             \
        }                                                                                      \
    }

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)

/* bin_regular(x, out, A, C, B, cuts, values, n1, gate, is_double, r0, r1) */
static PyObject *py_bin_regular(PyObject *self, PyObject *args) {
    unsigned long long x, out, cuts, values, gate;
    long long A, C, B, n1, r0, r1;
    int is_double;
    if (!PyArg_ParseTuple(args, "KKLLLKKLKpLL", &x, &out, &A, &C, &B, &cuts, &values, &n1, &gate,
                          &is_double, &r0, &r1))
        return NULL;
    Py_BEGIN_ALLOW_THREADS;
    if (is_double)
        bin_regular_f64((const double *)(uintptr_t)x, (double *)(uintptr_t)out, A, C, B,
                        (const double *)(uintptr_t)cuts, (const double *)(uintptr_t)values, n1,
                        (const uint8_t *)(uintptr_t)gate, r0, r1);
    else
        bin_regular_f32((const float *)(uintptr_t)x, (float *)(uintptr_t)out, A, C, B,
                        (const float *)(uintptr_t)cuts, (const float *)(uintptr_t)values, n1,
                        (const uint8_t *)(uintptr_t)gate, r0, r1);
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

/* bin_channels_last(x, out, A, C, cuts_t, values_t, n1, gate, is_double, r0, r1) */
static PyObject *py_bin_channels_last(PyObject *self, PyObject *args) {
    unsigned long long x, out, cuts, values, gate;
    long long A, C, n1, r0, r1;
    int is_double;
    if (!PyArg_ParseTuple(args, "KKLLKKLKpLL", &x, &out, &A, &C, &cuts, &values, &n1, &gate,
                          &is_double, &r0, &r1))
        return NULL;
    Py_BEGIN_ALLOW_THREADS;
    if (is_double)
        bin_channels_last_f64((const double *)(uintptr_t)x, (double *)(uintptr_t)out, A, C,
                              (const double *)(uintptr_t)cuts, (const double *)(uintptr_t)values,
                              n1, (const uint8_t *)(uintptr_t)gate, r0, r1);
    else
        bin_channels_last_f32((const float *)(uintptr_t)x, (float *)(uintptr_t)out, A, C,
                              (const float *)(uintptr_t)cuts, (const float *)(uintptr_t)values,
                              n1, (const uint8_t *)(uintptr_t)gate, r0, r1);
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

/* bin_segments(x, out, C, seg, cuts, values, n1, gate, is_double, r0, r1) */
static PyObject *py_bin_segments(PyObject *self, PyObject *args) {
    unsigned long long x, out, seg, cuts, values, gate;
    long long C, n1, r0, r1;
    int is_double;
    if (!PyArg_ParseTuple(args, "KKLKKKLKpLL", &x, &out, &C, &seg, &cuts, &values, &n1, &gate,
                          &is_double, &r0, &r1))
        return NULL;
    Py_BEGIN_ALLOW_THREADS;
    if (is_double)
        bin_segments_f64((const double *)(uintptr_t)x, (double *)(uintptr_t)out, C,
                         (const int64_t *)(uintptr_t)seg, (const double *)(uintptr_t)cuts,
                         (const double *)(uintptr_t)values, n1, (const uint8_t *)(uintptr_t)gate,
                         r0, r1);
    else
        bin_segments_f32((const float *)(uintptr_t)x, (float *)(uintptr_t)out, C,
                         (const int64_t *)(uintptr_t)seg, (const float *)(uintptr_t)cuts,
                         (const float *)(uintptr_t)values, n1, (const uint8_t *)(uintptr_t)gate,
                         r0, r1);
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

/* segment_min_max(x, N, C, seg, mn, mx, counts, is_double) */
static PyObject *py_segment_min_max(PyObject *self, PyObject *args) {
    unsigned long long x, seg, mn, mx, counts;
    long long N, C;
    int is_double;
    if (!PyArg_ParseTuple(args, "KLLKKKKp", &x, &N, &C, &seg, &mn, &mx, &counts, &is_double))
        return NULL;
    Py_BEGIN_ALLOW_THREADS;
    if (is_double)
        segment_min_max_f64((const double *)(uintptr_t)x, N, C, (const int64_t *)(uintptr_t)seg,
                            (double *)(uintptr_t)mn, (double *)(uintptr_t)mx,
                            (int64_t *)(uintptr_t)counts);
    else
        segment_min_max_f32((const float *)(uintptr_t)x, N, C, (const int64_t *)(uintptr_t)seg,
                            (float *)(uintptr_t)mn, (float *)(uintptr_t)mx,
                            (int64_t *)(uintptr_t)counts);
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"bin_regular", py_bin_regular, METH_VARARGS,
     "Bin and collapse rows [r0, r1) of a contiguous (S, A, C, B) float32/float64 tensor."},
    {"bin_channels_last", py_bin_channels_last, METH_VARARGS,
     "Bin and collapse rows [r0, r1) of a contiguous (S, A, C) tensor with (S, k, C) tables."},
    {"segment_min_max", py_segment_min_max, METH_VARARGS,
     "Per-(segment, channel) min, max and row counts of a contiguous packed (N, C) tensor."},
    {"bin_segments", py_bin_segments, METH_VARARGS,
     "Bin and collapse rows [r0, r1) of a contiguous packed (N, C) float32/float64 tensor."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "Compiled CPU bin-and-collapse pass of rq_core's randomized quantization.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
