/* The token scan of nx/ingest/token_scan.py, compiled: the same rules, the same results.

   token_lists(data, opening, closing, expected, order) -> (values, string_offsets, list_offsets)
   or None. ``data`` is a compact JSON document; each of the ``expected`` arrays starts after
   ``opening`` and ends at the quote that starts ``closing``. ``order`` (bytes of int32, or
   None) gives the arrays' order in the result. ``values`` holds the decoded bytes of every
   string, ``string_offsets`` (int32) where each string starts in it, ``list_offsets``
   (int32) where each list starts among the strings: the three buffers of an Arrow
   list<string> array. None whenever the pure-Python scan gives None: more or fewer arrays,
   an element that is not a string, a \u escape, anything but one comma between strings. */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static unsigned char unescape_table[256];

static const char *find(const char *haystack, Py_ssize_t length, const char *needle, Py_ssize_t size) {
    if (length < size) return NULL;
    return memmem(haystack, (size_t)length, needle, (size_t)size);
}

static PyObject *token_lists(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data, opening, closing, order;
    Py_ssize_t expected;
    order.buf = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*nz*", &data, &opening, &closing, &expected, &order)) return NULL;
    PyObject *result = NULL, *values = NULL, *string_offsets = NULL, *list_offsets = NULL;
    Py_ssize_t *starts = NULL, *ends = NULL;
    const char *doc = data.buf, *open_key = opening.buf, *close_key = closing.buf;
    const Py_ssize_t n = data.len;
    if (expected < 0 || (order.buf && order.len != expected * 4) || opening.len == 0 || closing.len == 0) {
        PyErr_SetString(PyExc_ValueError, "bad arguments");
        goto done;
    }
    starts = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(expected + 1));
    ends = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(expected + 1));
    if (!starts || !ends) { PyErr_NoMemory(); goto done; }

    /* where each array's text is: [start, end), end just after its last closing quote */
    Py_ssize_t count = 0, text_bytes = 0;
    const char *at = find(doc, n, open_key, opening.len);
    while (at) {
        if (count == expected) goto none;
        Py_ssize_t start = (at - doc) + opening.len;
        if (start < n && doc[start] == ']') {
            starts[count] = ends[count] = start;
            count++;
            at = find(doc + start, n - start, open_key, opening.len);
            continue;
        }
        const char *quote = find(doc + start, n - start, close_key, closing.len);
        if (!quote) goto none;
        starts[count] = start;
        ends[count] = (quote - doc) + 1;
        text_bytes += ends[count] - start;
        count++;
        at = find(quote, n - (quote - doc), open_key, opening.len);
    }
    if (count != expected) goto none;

    /* every string takes two quotes and gives at most one byte per other byte of text */
    const Py_ssize_t value_room = text_bytes, string_room = text_bytes / 2;
    values = PyBytes_FromStringAndSize(NULL, value_room);
    string_offsets = PyBytes_FromStringAndSize(NULL, (string_room + 1) * 4);
    list_offsets = PyBytes_FromStringAndSize(NULL, (expected + 1) * 4);
    if (!values || !string_offsets || !list_offsets) goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(values);
    int32_t *string_at = (int32_t *)PyBytes_AS_STRING(string_offsets);
    int32_t *list_at = (int32_t *)PyBytes_AS_STRING(list_offsets);
    const char *rows = order.buf;
    Py_ssize_t strings = 0, written = 0;
    for (Py_ssize_t row = 0; row < expected; row++) {
        Py_ssize_t i = row;
        if (rows) {
            int32_t index;
            memcpy(&index, rows + 4 * row, 4);
            i = index;
        }
        if (i < 0 || i >= expected) { PyErr_SetString(PyExc_ValueError, "order out of range"); goto done; }
        list_at[row] = (int32_t)strings;
        Py_ssize_t p = starts[i];
        const Py_ssize_t end = ends[i];
        while (p < end) {
            if (doc[p] != '"') goto none;
            p++;
            if (strings >= string_room) goto none; /* only if ``order`` repeats an array */
            string_at[strings++] = (int32_t)written;
            for (;;) {
                if (p >= end) goto none;
                unsigned char c = (unsigned char)doc[p];
                if (c == '"') break;
                if (written >= value_room) goto none; /* only if ``order`` repeats an array */
                if (c == '\\') {
                    if (p + 1 >= end) goto none;
                    unsigned char decoded = unescape_table[(unsigned char)doc[p + 1]];
                    if (!decoded) goto none; /* \u or not JSON */
                    out[written++] = decoded;
                    p += 2;
                } else {
                    out[written++] = c;
                    p++;
                }
            }
            p++; /* the closing quote */
            if (p == end) break;
            if (doc[p] != ',') goto none;
            p++;
            if (p == end) goto none; /* a trailing comma */
        }
    }
    list_at[expected] = (int32_t)strings;
    string_at[strings] = (int32_t)written;
    if (_PyBytes_Resize(&values, written) < 0) { values = NULL; goto done; }
    if (_PyBytes_Resize(&string_offsets, (strings + 1) * 4) < 0) { string_offsets = NULL; goto done; }
    result = PyTuple_Pack(3, values, string_offsets, list_offsets);
    goto done;
none:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(values);
    Py_XDECREF(string_offsets);
    Py_XDECREF(list_offsets);
    PyMem_Free(starts);
    PyMem_Free(ends);
    PyBuffer_Release(&data);
    PyBuffer_Release(&opening);
    PyBuffer_Release(&closing);
    if (order.buf) PyBuffer_Release(&order);
    return result;
}

static PyMethodDef methods[] = {
    {"token_lists", token_lists, METH_VARARGS, "The token scan, compiled (see nx/ingest/token_scan.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_token_scan", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__token_scan(void) {
    const char *escapes = "nrtbf\"\\/", *bytes = "\n\r\t\b\f\"\\/";
    for (int k = 0; escapes[k]; k++) unescape_table[(unsigned char)escapes[k]] = (unsigned char)bytes[k];
    return PyModule_Create(&module);
}
