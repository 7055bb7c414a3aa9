/* A canonical NeuronRecord read straight from its bytes, compiled: one pass, no parse tree.

   neuron_record(data, layer, neuron) -> None or
       (chars, string_offsets, token_offsets, values, value_offsets,
        (top_count, random_count, quantile_counts or None), (mean, variance, skewness, kurtosis),
        quantile_boundaries or None)
   The first five are the buffers of the records' two Arrow list arrays (tokens: UTF-8 bytes,
   int32 string offsets, int32 list offsets; activations: float64 values, int32 list offsets)
   with the records in row order (top, random, then each quantile's), whatever the file's key
   order. None whenever the file is not exactly what the seed writes: compact JSON (whitespace
   only around the document), the ten NeuronRecord keys once each, a NeuronId naming this
   layer and neuron, records of exactly tokens, activations and dataclass_name (name first or
   last), tokens without \u escapes, numbers written as decimals with a point or an exponent
   (integers, nulls among numbers, values beyond float64's normal range: None). The caller then
   reads the file with simdjson (collated_activations.py), which gives the same rows for every
   file this accepts; the tests hold them to it.

   Numbers are correctly rounded, as simdjson and Python's float() round them. Digits up to
   2^53 and a power of ten up to 10^22 (both exact doubles) take one rounded double operation
   (Clinger's fast path). Up to 19 significant digits and a power within 10^+-27 (both exact in
   the x87's 64-bit significand) take one rounded long double operation and then the rounding
   to double, which is right unless the long double lies on (or next to) a halfway point
   between two doubles. Those, and all other numbers, go through Python's own correctly
   rounded PyOS_string_to_double. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && LDBL_MANT_DIG == 64
#define EXTENDED 1
static long double powers[28]; /* 10^0 .. 10^27, each exact */
#else
#define EXTENDED 0
#endif

/* Scratch buffers in file order, kept between calls (the GIL is held throughout). */
typedef struct { char *data; Py_ssize_t size, room; } Buf;
static Buf chars, string_ends, values, record_strings, record_values, bins, boundaries;

static inline int reserve(Buf *b, Py_ssize_t more) {
    if (b->size + more <= b->room) return 0;
    Py_ssize_t room = b->room ? b->room : 1 << 16;
    while (room < b->size + more) room *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)room);
    if (!data) { PyErr_NoMemory(); return -1; }
    b->data = data;
    b->room = room;
    return 0;
}

#define PUSH(buf, type, value) do { \
    if (reserve(&(buf), sizeof(type)) < 0) return -1; \
    *(type *)((buf).data + (buf).size) = (value); (buf).size += sizeof(type); } while (0)
#define COUNT(buf, type) ((buf).size / (Py_ssize_t)sizeof(type))
#define AT(buf, type, i) (((type *)(buf).data)[i])

/* Every reader below returns 0 (read), 1 (not canonical: the caller gives None) or -1 (error set). */
typedef struct { const unsigned char *p, *end; } Scan;

static int literal(Scan *s, const char *text, Py_ssize_t size) {
    if (s->end - s->p < size || memcmp(s->p, text, (size_t)size) != 0) return 1;
    s->p += size;
    return 0;
}
#define LITERAL(s, text) literal((s), (text), (Py_ssize_t)sizeof(text) - 1)

static unsigned char unescape_table[256], plain[256];

/* One JSON string's decoded bytes appended to ``chars`` (valid UTF-8, no \u escape). */
static int token(Scan *s) {
    const unsigned char *p = s->p, *end = s->end;
    if (p >= end || *p != '"') return 1;
    p++;
    if (reserve(&chars, end - p) < 0) return -1; /* never more bytes than are left */
    unsigned char *out = (unsigned char *)chars.data + chars.size, *start = out;
    for (;;) {
        while (p < end && plain[*p]) *out++ = *p++;
        if (p >= end) return 1;
        unsigned char c = *p;
        if (c == '"') break;
        if (c == '\\') {
            if (p + 1 >= end || !unescape_table[p[1]]) return 1;
            *out++ = unescape_table[p[1]];
            p += 2;
        } else if (c >= 0x80) {
            int more;
            unsigned char low = 0x80, high = 0xBF; /* the second byte's range */
            if (c >= 0xC2 && c <= 0xDF) more = 1;
            else if (c >= 0xE0 && c <= 0xEF) { more = 2; if (c == 0xE0) low = 0xA0; if (c == 0xED) high = 0x9F; }
            else if (c >= 0xF0 && c <= 0xF4) { more = 3; if (c == 0xF0) low = 0x90; if (c == 0xF4) high = 0x8F; }
            else return 1;
            if (end - p <= more || p[1] < low || p[1] > high) return 1;
            for (int k = 2; k <= more; k++) if ((p[k] & 0xC0) != 0x80) return 1;
            for (int k = 0; k <= more; k++) *out++ = p[k];
            p += more + 1;
        } else {
            return 1; /* a control character */
        }
    }
    s->p = p + 1;
    chars.size += out - start;
    if (chars.size > INT32_MAX) return 1;
    PUSH(string_ends, int32_t, (int32_t)chars.size);
    return 0;
}

static int slow_number(const unsigned char *start, const unsigned char *end, double *out) {
    char text[64];
    Py_ssize_t size = end - start;
    if (size >= (Py_ssize_t)sizeof(text)) return 1;
    memcpy(text, start, (size_t)size);
    text[size] = 0;
    char *stop;
    double value = PyOS_string_to_double(text, &stop, NULL);
    if (value == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 1; }
    if (stop != text + size || !isfinite(value) || fabs(value) < DBL_MIN) return 1;
    *out = value;
    return 0;
}

/* Eight ASCII digits at once (simdjson's SWAR trick): whether they are, and their value. */
static inline int eight_digits(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return ((v & 0xF0F0F0F0F0F0F0F0ULL) | (((v + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4))
           == 0x3333333333333333ULL;
}

static inline uint64_t eight_value(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    v = ((v & 0x0F0F0F0F0F0F0F0FULL) * 2561) >> 8;
    v = ((v & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
    return ((v & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32;
}

#define DIGIT(c) ((unsigned)((c) - '0') < 10)
static const double exact_powers[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
                                        1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number with a fraction or an exponent, as the nearest double. */
static int number(Scan *s, double *out) {
    const unsigned char *p = s->p, *end = s->end, *start = p, *dot = NULL;
    int negative = p < end && *p == '-';
    p += negative;
    const unsigned char *first = p;
    uint64_t m = 0; /* the digits' value, right while there are at most 19 significant ones */
    long exponent = 0;
    if (p >= end) return 1;
    if (*p == '0') {
        p++;
        if (p < end && DIGIT(*p)) return 1;
    } else if ((unsigned)(*p - '1') < 9) {
        for (; p < end && DIGIT(*p); p++) m = m * 10 + (uint64_t)(*p - '0');
    } else {
        return 1;
    }
    if (p < end && *p == '.') {
        dot = p++;
        for (; end - p >= 8 && eight_digits(p); p += 8) m = m * 100000000 + eight_value(p);
        for (; p < end && DIGIT(*p); p++) m = m * 10 + (uint64_t)(*p - '0');
        if (p == dot + 1) return 1;
        exponent = -(long)(p - dot - 1);
    }
    const unsigned char *last = p;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int minus = 0;
        if (p < end && (*p == '+' || *p == '-')) { minus = *p == '-'; p++; }
        if (p >= end || !DIGIT(*p)) return 1;
        long e = 0;
        for (; p < end && DIGIT(*p); p++) if (e < 100000) e = e * 10 + (*p - '0');
        exponent += minus ? -e : e;
    } else if (!dot) {
        s->p = p;
        return 1; /* an integer: simdjson's path knows its type */
    }
    s->p = p;
    Py_ssize_t digits = (last - first) - (dot != NULL);
    if (digits > 19) { /* leading zeros do not count; more than 19 others: Python's parser */
        const unsigned char *q = first;
        while (q < last && (*q == '0' || *q == '.')) q++;
        digits = (last - q) - (dot != NULL && dot > q);
        if (digits > 19) return slow_number(start, p, out);
    }
    if (m == 0) { *out = negative ? -0.0 : 0.0; return 0; }
#if FLT_EVAL_METHOD == 0
    if (m <= (1ULL << 53) && exponent >= -22 && exponent <= 22) { /* one exact operand each: Clinger's */
        double value = (double)m;
        value = exponent < 0 ? value / exact_powers[-exponent] : value * exact_powers[exponent];
        *out = negative ? -value : value;
        return 0;
    }
#endif
#if EXTENDED
    if (exponent >= -27 && exponent <= 27) {
        long double x = (long double)m;
        x = exponent < 0 ? x / powers[-exponent] : x * powers[exponent];
        unsigned char bytes[sizeof(long double)];
        uint64_t significand;
        memcpy(bytes, &x, sizeof(x));
        memcpy(&significand, bytes, 8);
        unsigned rounding = (unsigned)(significand & 0x7FF); /* the 11 bits a double drops */
        if (rounding < 0x3FF || rounding > 0x401) {
            double value = (double)x;
            *out = negative ? -value : value;
            return 0;
        }
    }
#endif
    return slow_number(start, p, out);
}

static int records(Scan *s) {
    /* [ {record}, ... ]: each record's string and value counts so far pushed */
    if (LITERAL(s, "[")) return 1;
    if (s->p < s->end && *s->p == ']') { s->p++; return 0; }
    for (;;) {
        int name_first = 0, found;
        if (LITERAL(s, "{\"tokens\":[") != 0) {
            if (LITERAL(s, "{\"dataclass_name\":\"ActivationRecord\",\"tokens\":[")) return 1;
            name_first = 1;
        }
        if (s->p < s->end && *s->p == ']') s->p++;
        else for (;;) {
            if ((found = token(s))) return found;
            if (s->p < s->end && *s->p == ',') { s->p++; continue; }
            if (LITERAL(s, "]")) return 1;
            break;
        }
        if (LITERAL(s, ",\"activations\":[")) return 1;
        if (s->p < s->end && *s->p == ']') s->p++;
        else for (;;) {
            if (reserve(&values, sizeof(double)) < 0) return -1;
            if ((found = number(s, (double *)(values.data + values.size)))) return found;
            values.size += sizeof(double);
            if (s->p < s->end && *s->p == ',') { s->p++; continue; }
            if (LITERAL(s, "]")) return 1;
            break;
        }
        if (name_first ? LITERAL(s, "}") : LITERAL(s, ",\"dataclass_name\":\"ActivationRecord\"}")) return 1;
        if (COUNT(values, double) > INT32_MAX) return 1;
        PUSH(record_strings, int32_t, (int32_t)COUNT(string_ends, int32_t));
        PUSH(record_values, int32_t, (int32_t)COUNT(values, double));
        if (s->p < s->end && *s->p == ',') { s->p++; continue; }
        return LITERAL(s, "]");
    }
}

/* A group of records: where its records start and how many (pushed to ``bins``). */
static int group(Scan *s) {
    int32_t first = (int32_t)COUNT(record_strings, int32_t);
    int found = records(s);
    if (found) return found;
    PUSH(bins, int32_t, first);
    PUSH(bins, int32_t, (int32_t)COUNT(record_strings, int32_t) - first);
    return 0;
}

static int small_integer(Scan *s, Py_ssize_t wanted) {
    const unsigned char *p = s->p;
    Py_ssize_t value = 0;
    int digits = 0;
    if (p < s->end && *p == '0' && (p + 1 >= s->end || p[1] < '0' || p[1] > '9')) { p++; digits = 1; }
    else for (; p < s->end && *p >= '0' && *p <= '9' && digits < 18; p++, digits++) {
        if (digits == 0 && *p == '0') return 1;
        value = value * 10 + (*p - '0');
    }
    if (!digits || (p < s->end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E'))) return 1;
    s->p = p;
    return value == wanted ? 0 : 1;
}

static int neuron_id(Scan *s, Py_ssize_t layer, Py_ssize_t neuron) {
    int seen = 0, found;
    if (LITERAL(s, "{")) return 1;
    for (;;) {
        if (!LITERAL(s, "\"layer_index\":") && !(seen & 1)) { seen |= 1; found = small_integer(s, layer); }
        else if (!LITERAL(s, "\"neuron_index\":") && !(seen & 2)) { seen |= 2; found = small_integer(s, neuron); }
        else if (!LITERAL(s, "\"dataclass_name\":\"NeuronId\"") && !(seen & 4)) { seen |= 4; found = 0; }
        else return 1;
        if (found) return found;
        if (s->p < s->end && *s->p == ',') { s->p++; continue; }
        return seen == 7 ? LITERAL(s, "}") : 1;
    }
}

/* A number or null as a Python object (a new reference in *out). */
static int moment(Scan *s, PyObject **out) {
    double value;
    int found;
    if (!LITERAL(s, "null")) { *out = Py_NewRef(Py_None); return 0; }
    if ((found = number(s, &value))) return found;
    *out = PyFloat_FromDouble(value);
    return *out ? 0 : -1;
}

static int quantile_boundaries(Scan *s, int *present) {
    if (!LITERAL(s, "null")) { *present = 0; return 0; }
    *present = 1;
    if (LITERAL(s, "[")) return 1;
    if (s->p < s->end && *s->p == ']') { s->p++; return 0; }
    for (;;) {
        double value;
        int found = number(s, &value);
        if (found) return found;
        PUSH(boundaries, double, value);
        if (s->p < s->end && *s->p == ',') { s->p++; continue; }
        return LITERAL(s, "]");
    }
}

static const char *const KEYS[] = {"neuron_id", "random_sample", "random_sample_by_quantile", "quantile_boundaries",
                                   "mean", "variance", "skewness", "kurtosis", "most_positive_activation_records",
                                   "dataclass_name"};
enum { NEURON_ID, RANDOM, BY_QUANTILE, BOUNDARIES, MEAN, KURTOSIS = 7, TOP, NAME, KEY_COUNT };

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The whole document; ``groups`` gets the bins index of top, random and the quantiles' first. */
static int document(Scan *s, Py_ssize_t layer, Py_ssize_t neuron, Py_ssize_t groups[3], Py_ssize_t *quantiles,
                    PyObject *moments[4], int *has_boundaries) {
    int seen = 0, found;
    while (s->p < s->end && is_space(*s->p)) s->p++;
    while (s->end > s->p && is_space(s->end[-1])) s->end--;
    if (LITERAL(s, "{")) return 1;
    for (;;) {
        int key = 0;
        if (LITERAL(s, "\"")) return 1;
        for (; key < KEY_COUNT; key++) {
            size_t size = strlen(KEYS[key]);
            if (s->end - s->p > (Py_ssize_t)size + 1 && memcmp(s->p, KEYS[key], size) == 0
                && s->p[size] == '"' && s->p[size + 1] == ':') break;
        }
        if (key == KEY_COUNT || seen & (1 << key)) return 1;
        seen |= 1 << key;
        s->p += strlen(KEYS[key]) + 2;
        if (key == NEURON_ID) found = neuron_id(s, layer, neuron);
        else if (key == TOP || key == RANDOM) { groups[key == TOP ? 0 : 1] = COUNT(bins, int32_t); found = group(s); }
        else if (key == BOUNDARIES) found = quantile_boundaries(s, has_boundaries);
        else if (key >= MEAN && key <= KURTOSIS) found = moment(s, &moments[key - MEAN]);
        else if (key == NAME) found = LITERAL(s, "\"NeuronRecord\"");
        else if (!LITERAL(s, "null")) { *quantiles = -1; found = 0; }
        else {
            groups[2] = COUNT(bins, int32_t);
            if ((found = LITERAL(s, "["))) return found;
            if (s->p < s->end && *s->p == ']') s->p++;
            else for (;;) {
                if ((found = group(s))) return found;
                ++*quantiles;
                if (s->p < s->end && *s->p == ',') { s->p++; continue; }
                if ((found = LITERAL(s, "]"))) return found;
                break;
            }
        }
        if (found) return found;
        if (s->p < s->end && *s->p == ',') { s->p++; continue; }
        if (LITERAL(s, "}") || s->p != s->end || seen != (1 << KEY_COUNT) - 1) return 1;
        return 0;
    }
}

/* The records' buffers in row order: the groups' records are each a run in file order. */
static PyObject *in_row_order(Py_ssize_t groups[3], Py_ssize_t quantiles) {
    const int32_t *bin = (const int32_t *)bins.data;
    const int32_t *rec_strings = (const int32_t *)record_strings.data, *rec_values = (const int32_t *)record_values.data;
    const int32_t *ends = (const int32_t *)string_ends.data;
    Py_ssize_t order[3], records = COUNT(record_strings, int32_t), strings = COUNT(string_ends, int32_t);
    order[0] = groups[0]; order[1] = groups[1]; order[2] = groups[2];
    PyObject *out[5];
    out[0] = PyBytes_FromStringAndSize(NULL, chars.size);
    out[1] = PyBytes_FromStringAndSize(NULL, (strings + 1) * 4);
    out[2] = PyBytes_FromStringAndSize(NULL, (records + 1) * 4);
    out[3] = PyBytes_FromStringAndSize(NULL, values.size);
    out[4] = PyBytes_FromStringAndSize(NULL, (records + 1) * 4);
    PyObject *result = NULL;
    for (int k = 0; k < 5; k++) if (!out[k]) goto done;
    char *char_out = PyBytes_AS_STRING(out[0]);
    int32_t *string_out = (int32_t *)PyBytes_AS_STRING(out[1]), *token_out = (int32_t *)PyBytes_AS_STRING(out[2]);
    char *value_out = PyBytes_AS_STRING(out[3]);
    int32_t *value_offsets = (int32_t *)PyBytes_AS_STRING(out[4]);
    Py_ssize_t at_char = 0, at_string = 0, at_value = 0, at_record = 0;
    Py_ssize_t group_count = 2 + (quantiles > 0 ? quantiles : 0);
    for (Py_ssize_t g = 0; g < group_count; g++) {
        Py_ssize_t index = g < 2 ? order[g] : order[2] + 2 * (g - 2);
        Py_ssize_t first = bin[index], count = bin[index + 1];
        if (!count) continue;
        Py_ssize_t s0 = first ? rec_strings[first - 1] : 0, s1 = rec_strings[first + count - 1];
        Py_ssize_t v0 = first ? rec_values[first - 1] : 0, v1 = rec_values[first + count - 1];
        Py_ssize_t c0 = s0 ? ends[s0 - 1] : 0, c1 = s1 ? ends[s1 - 1] : 0;
        memcpy(char_out + at_char, chars.data + c0, (size_t)(c1 - c0));
        memcpy(value_out + at_value * 8, values.data + v0 * 8, (size_t)(v1 - v0) * 8);
        for (Py_ssize_t i = s0; i < s1; i++) string_out[at_string + i - s0 + 1] = (int32_t)(at_char + ends[i] - c0);
        for (Py_ssize_t r = first; r < first + count; r++) {
            Py_ssize_t before_s = r ? rec_strings[r - 1] : 0, before_v = r ? rec_values[r - 1] : 0;
            token_out[at_record] = (int32_t)(at_string + before_s - s0);
            value_offsets[at_record] = (int32_t)(at_value + before_v - v0);
            at_record++;
        }
        at_char += c1 - c0;
        at_string += s1 - s0;
        at_value += v1 - v0;
    }
    string_out[0] = 0;
    token_out[at_record] = (int32_t)at_string;
    value_offsets[at_record] = (int32_t)at_value;
    result = PyTuple_Pack(5, out[0], out[1], out[2], out[3], out[4]);
done:
    for (int k = 0; k < 5; k++) Py_XDECREF(out[k]);
    return result;
}

static PyObject *neuron_record(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data;
    Py_ssize_t layer, neuron, groups[3] = {-1, -1, -1}, quantiles = 0;
    if (!PyArg_ParseTuple(args, "y*nn", &data, &layer, &neuron)) return NULL;
    PyObject *moments[4] = {NULL, NULL, NULL, NULL}, *result = NULL, *buffers = NULL;
    PyObject *counts = NULL, *bin_counts = NULL, *bounds = NULL, *moment_tuple = NULL;
    chars.size = string_ends.size = values.size = record_strings.size = record_values.size = 0;
    bins.size = boundaries.size = 0;
    int has_boundaries = 0;
    Scan s = {data.buf, (const unsigned char *)data.buf + data.len};
    int found = data.len > INT32_MAX ? 1 : document(&s, layer, neuron, groups, &quantiles, moments, &has_boundaries);
    if (found < 0) goto done;
    if (found > 0) { result = Py_NewRef(Py_None); goto done; }
    if (!(buffers = in_row_order(groups, quantiles))) goto done;
    const int32_t *bin = (const int32_t *)bins.data;
    if (quantiles >= 0) {
        if (!(bin_counts = PyTuple_New(quantiles))) goto done;
        for (Py_ssize_t q = 0; q < quantiles; q++) {
            PyObject *n = PyLong_FromLong(bin[groups[2] + 2 * q + 1]);
            if (!n) goto done;
            PyTuple_SET_ITEM(bin_counts, q, n);
        }
    } else {
        bin_counts = Py_NewRef(Py_None);
    }
    if (!(counts = Py_BuildValue("(iiO)", bin[groups[0] + 1], bin[groups[1] + 1], bin_counts))) goto done;
    if (has_boundaries) {
        if (!(bounds = PyList_New(COUNT(boundaries, double)))) goto done;
        for (Py_ssize_t i = 0; i < COUNT(boundaries, double); i++) {
            PyObject *value = PyFloat_FromDouble(AT(boundaries, double, i));
            if (!value) goto done;
            PyList_SET_ITEM(bounds, i, value);
        }
    } else {
        bounds = Py_NewRef(Py_None);
    }
    if (!(moment_tuple = PyTuple_Pack(4, moments[0], moments[1], moments[2], moments[3]))) goto done;
    result = Py_BuildValue("(OOOOOOOO)", PyTuple_GET_ITEM(buffers, 0), PyTuple_GET_ITEM(buffers, 1),
                           PyTuple_GET_ITEM(buffers, 2), PyTuple_GET_ITEM(buffers, 3), PyTuple_GET_ITEM(buffers, 4),
                           counts, moment_tuple, bounds);
done:
    for (int k = 0; k < 4; k++) Py_XDECREF(moments[k]);
    Py_XDECREF(buffers);
    Py_XDECREF(counts);
    Py_XDECREF(bin_counts);
    Py_XDECREF(bounds);
    Py_XDECREF(moment_tuple);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"neuron_record", neuron_record, METH_VARARGS, "A canonical NeuronRecord's rows, compiled (see the source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_record_scan", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__record_scan(void) {
    const char *escapes = "nrtbf\"\\/", *bytes = "\n\r\t\b\f\"\\/";
    for (int k = 0; escapes[k]; k++) unescape_table[(unsigned char)escapes[k]] = (unsigned char)bytes[k];
    for (int c = 0x20; c < 0x80; c++) plain[c] = c != '"' && c != '\\';
#if EXTENDED
    powers[0] = 1.0L;
    for (int k = 1; k < 28; k++) powers[k] = powers[k - 1] * 10.0L;
#endif
    return PyModule_Create(&module);
}
