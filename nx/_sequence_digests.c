/* The SHA-256 loop of nx/keys.py's sequence_ids, compiled: the same digests, through OpenSSL's
   SHA-256 as Python's hashlib (hardware SHA where the CPU has it), without a Python call per row.

   digests(heads, head_offsets, chars, char_offsets) -> bytes of 8 * n. Row i's digest is the
   SHA-256 of heads[head_offsets[i]:head_offsets[i + 1]] followed by
   chars[char_offsets[i]:char_offsets[i + 1]], cut to its first 8 bytes; both offset arrays
   are n + 1 int64 values, non-decreasing and within their buffers (ValueError otherwise). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <openssl/evp.h>

static int offsets_fit(const int64_t *offsets, Py_ssize_t count, Py_ssize_t size) {
    if (offsets[0] < 0) return 0;
    for (Py_ssize_t i = 0; i < count; i++)
        if (offsets[i + 1] < offsets[i]) return 0;
    return offsets[count] <= size;
}

static PyObject *digests(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer heads, head_offsets, chars, char_offsets;
    if (!PyArg_ParseTuple(args, "y*y*y*y*", &heads, &head_offsets, &chars, &char_offsets)) return NULL;
    PyObject *result = NULL;
    const Py_ssize_t count = head_offsets.len / 8 - 1;
    const int64_t *ho = head_offsets.buf, *co = char_offsets.buf;
    if (head_offsets.len % 8 || count < 0 || char_offsets.len != head_offsets.len
            || !offsets_fit(ho, count, heads.len) || !offsets_fit(co, count, chars.len)) {
        PyErr_SetString(PyExc_ValueError, "offsets do not fit their buffers");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, 8 * count);
    if (!result) goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *h = heads.buf, *c = chars.buf;
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS
    EVP_MD_CTX *template = EVP_MD_CTX_new(), *ctx = EVP_MD_CTX_new();
    ok = template && ctx && EVP_DigestInit_ex(template, EVP_sha256(), NULL);
    unsigned char digest[EVP_MAX_MD_SIZE];
    for (Py_ssize_t i = 0; ok && i < count; i++) {
        /* a copy of an initialised context: cheaper than initialising one for every row */
        ok = EVP_MD_CTX_copy_ex(ctx, template)
             && EVP_DigestUpdate(ctx, h + ho[i], (size_t)(ho[i + 1] - ho[i]))
             && EVP_DigestUpdate(ctx, c + co[i], (size_t)(co[i + 1] - co[i]))
             && EVP_DigestFinal_ex(ctx, digest, NULL);
        memcpy(out + 8 * i, digest, 8);
    }
    EVP_MD_CTX_free(ctx);
    EVP_MD_CTX_free(template);
    Py_END_ALLOW_THREADS
    if (!ok) {
        Py_CLEAR(result);
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL's SHA-256 failed");
    }
done:
    PyBuffer_Release(&heads);
    PyBuffer_Release(&head_offsets);
    PyBuffer_Release(&chars);
    PyBuffer_Release(&char_offsets);
    return result;
}

static PyMethodDef methods[] = {
    {"digests", digests, METH_VARARGS, "sequence_id digests, compiled (see nx/keys.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_sequence_digests", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__sequence_digests(void) {
    return PyModule_Create(&module);
}
