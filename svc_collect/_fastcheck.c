/* The collector's event check in C, for the events it can vouch for: svc_collect.validation's fast path.
 *
 * ``Checker.check(data, now_us)`` reads an event's deterministic protobuf encoding (what EventValidator.check
 * stores and fingerprints) and answers one of:
 *   - the tuple EventValidator.check returns for an acceptable event (svc_collect.validation.Accepted);
 *   - False: the event would be acceptable but for its event_id in upper case: lower it, encode again, ask again;
 *   - None: anything else (a rejection, a name or type seen for the first time, a system event to verify, a form
 *     this reader does not know): the Python check decides, and words any rejection.
 * It never rejects: every refusal, and every event it is not sure of, goes to the Python check, so the two cannot
 * disagree on what is accepted; tests/test_collect_fastcheck.py compares them on generated and mutated events.
 * Names and event types are accepted only once the Python check has found them valid (its caches are shared).
 *
 * Why: the Python check reads each field through a upb message object (an object built per read): ~5 µs per
 * event, a fifth of the collector's CPU. This reads the encoding once, ~1 µs with the objects it returns.
 *
 * What it assumes of the Python check and of the protos (limits, field numbers, kinds) is exported as module
 * constants, which tests/test_collect_fastcheck.py compares with svc_collect.validation and the descriptors.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_ID_CHARS 128
#define MAX_LIST_ITEMS 1000
#define MIN_SECONDS (-62135596800LL)
#define MAX_SECONDS 253402300799LL
#define FLAG_OCCURRED_IN_FUTURE 1
#define FLAG_OCCURRED_TOO_OLD 2
#define LOCAL_PROPERTIES 64
#define LAST_EVENT_FIELD 15   /* Event's fields: 1-15; 4 and 12-15 output-only */
#define LAST_CONTEXT_FIELD 17 /* EventContext's fields: 1-17, all strings */
#define TIME_LIMIT_US (1LL << 62) /* windows are clamped to this (longer ones flag nothing either way) */
#define NOW_LIMIT_US (1LL << 61)  /* with occurred_at within +-2**58, every difference stays under the windows' limit */

/* Value.kind's fields (types.proto) */
enum { K_NONE = 0, K_STRING = 1, K_INT = 2, K_DOUBLE = 3, K_BOOL = 4, K_TIMESTAMP = 5, K_LIST = 6, K_MONEY = 7 };
static const char *KIND_NAMES[8] = {NULL,           "string_value",    "int_value",         "double_value",
                                    "bool_value",   "timestamp_value", "string_list_value", "money_fen_value"};
static PyObject *kind_names[8];
static PyObject *s_rules, *s_required, *s_reject_unknown, *s_kinds, *s_allowed, *s_max_length;

typedef struct {
    const uint8_t *p;
    Py_ssize_t n;
} Slice;

typedef struct {
    const uint8_t *p, *end;
} Reader;

static inline int read_varint(Reader *r, uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t byte = *r->p++;
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return 1;
        }
    }
    return 0;
}

/* The next field: its number, wire type and, for a length-delimited one, its bytes. 0 at the end or on bad form. */
static inline int next_field(Reader *r, uint32_t *number, int *wire, Slice *bytes) {
    uint64_t tag, length;
    if (r->p >= r->end || !read_varint(r, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1FFFFFFF)
        return 0;
    *number = (uint32_t)(tag >> 3);
    *wire = (int)(tag & 7);
    if (*wire == 2) {
        if (!read_varint(r, &length) || length > (uint64_t)(r->end - r->p))
            return 0;
        bytes->p = r->p;
        bytes->n = (Py_ssize_t)length;
        r->p += length;
    }
    return 1;
}

/* Characters of valid UTF-8 (upb checks proto3 strings): the bytes that start one. */
static inline Py_ssize_t utf8_chars(Slice s) {
    Py_ssize_t chars = 0;
    for (Py_ssize_t i = 0; i < s.n; i++)
        chars += (s.p[i] & 0xC0) != 0x80;
    return chars;
}

/* Printable ASCII only (no NUL, no control or format character): what str.isprintable() accepts, in ASCII. */
static inline int printable_ascii(Slice s) {
    for (Py_ssize_t i = 0; i < s.n; i++)
        if (s.p[i] < 0x20 || s.p[i] > 0x7E)
            return 0;
    return 1;
}

static inline int has_nul(Slice s) { return s.n && memchr(s.p, 0, (size_t)s.n) != NULL; }

static inline PyObject *text(Slice s) { return PyUnicode_DecodeUTF8((const char *)s.p, s.n, NULL); }

/* The id as the Python check accepts it: 8-4-4-4-12 hex. 1 lower case, 2 with upper case, 0 not a UUID. */
static int uuid_form(Slice s) {
    if (s.n != 36)
        return 0;
    int upper = 0;
    for (int i = 0; i < 36; i++) {
        uint8_t c = s.p[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            if (c >= 'A' && c <= 'F')
                upper = 1;
            else
                return 0;
        }
    }
    return upper ? 2 : 1;
}

/* A Timestamp's seconds and nanos; 0 on bad form or any other field (upb keeps it aside as an unknown field, which
 * the Python check refuses: UNKNOWN_FIELD). */
static int read_timestamp(Slice s, int64_t *seconds, int64_t *nanos) {
    Reader r = {s.p, s.p + s.n};
    uint32_t number;
    int wire;
    Slice bytes;
    uint64_t v;
    *seconds = 0;
    *nanos = 0;
    while (r.p < r.end) {
        if (!next_field(&r, &number, &wire, &bytes))
            return 0;
        if ((number == 1 || number == 2) && wire == 0) {
            if (!read_varint(&r, &v))
                return 0;
            if (number == 1)
                *seconds = (int64_t)v;
            else
                *nanos = (int64_t)(int32_t)(uint32_t)v; /* int32: upb keeps the low 32 bits */
        } else {
            return 0;
        }
    }
    return 1;
}

static inline int valid_timestamp(int64_t seconds, int64_t nanos) {
    return seconds >= MIN_SECONDS && seconds <= MAX_SECONDS && nanos >= 0 && nanos < 1000000000;
}

typedef struct {
    PyObject_HEAD Py_ssize_t max_chars, max_bytes, max_props;
    long long future_us, age_us;
    int quarantine_out_of_range, quarantine_unknown;
    PyObject *good_types, *good_names, *channels, *id_types, *signed_types, *schema_for;
} Checker;

/* An Identity as _check_identities accepts it, without a look at Unicode: a known type, 1 to 128 printable ASCII. */
static int identity_ok(Checker *self, Slice s) {
    Reader r = {s.p, s.p + s.n};
    uint32_t number;
    int wire;
    Slice bytes, value = {NULL, 0};
    uint64_t type = 0;
    while (r.p < r.end) {
        if (!next_field(&r, &number, &wire, &bytes))
            return 0;
        if (number == 1 && wire == 0) {
            if (!read_varint(&r, &type))
                return 0;
        } else if (number == 2 && wire == 2) {
            value = bytes;
        } else {
            return 0; /* another wire type or field: an unknown field (the Python check refuses it) */
        }
    }
    if (value.n < 1 || value.n > MAX_ID_CHARS || !printable_ascii(value) || type > INT32_MAX)
        return 0;
    PyObject *key = PyLong_FromUnsignedLongLong(type);
    if (key == NULL)
        return -1;
    int known = PySet_Contains(self->id_types, key);
    Py_DECREF(key);
    return known;
}

/* EventContext: its fields only (any other is an unknown field), each a string of at most max_chars characters
 * (counted only for an event larger than that). */
static int context_ok(Checker *self, Slice s, int small) {
    Reader r = {s.p, s.p + s.n};
    uint32_t number;
    int wire;
    Slice bytes;
    while (r.p < r.end) {
        if (!next_field(&r, &number, &wire, &bytes))
            return 0;
        if (number > LAST_CONTEXT_FIELD || wire != 2 || (!small && utf8_chars(bytes) > self->max_chars))
            return 0;
    }
    return 1;
}

typedef struct {
    int kind;
    Slice string; /* K_STRING; K_TIMESTAMP and K_LIST: the message */
    uint64_t bits;   /* K_INT, K_MONEY, K_BOOL (varint); K_DOUBLE (fixed64) */
} Value;

/* A Value with exactly one kind set; 0 otherwise (none, several, or bad form). */
static int read_value(Slice s, Value *out) {
    Reader r = {s.p, s.p + s.n};
    uint32_t number;
    int wire;
    Slice bytes;
    out->kind = K_NONE;
    out->bits = 0;
    out->string.p = s.p;
    out->string.n = 0;
    while (r.p < r.end) {
        if (!next_field(&r, &number, &wire, &bytes))
            return 0;
        if (number >= 1 && number <= 7) {
            if (out->kind != K_NONE)
                return 0;
            out->kind = (int)number;
            switch (number) {
            case K_STRING:
            case K_TIMESTAMP:
            case K_LIST:
                if (wire != 2)
                    return 0;
                out->string = bytes;
                break;
            case K_DOUBLE:
                if (wire != 1 || r.end - r.p < 8)
                    return 0;
                memcpy(&out->bits, r.p, 8);
                r.p += 8;
                break;
            default: /* int, bool, money */
                if (wire != 0 || !read_varint(&r, &out->bits))
                    return 0;
            }
        } else {
            return 0; /* an unknown field */
        }
    }
    return out->kind != K_NONE;
}

/* _check_value: strings and list items within max_chars, doubles finite, timestamps valid, lists of at most 1000. */
static int value_ok(Checker *self, const Value *v) {
    switch (v->kind) {
    case K_STRING:
        return utf8_chars(v->string) <= self->max_chars;
    case K_DOUBLE: {
        double d;
        memcpy(&d, &v->bits, 8);
        return isfinite(d);
    }
    case K_TIMESTAMP: {
        int64_t seconds, nanos;
        return read_timestamp(v->string, &seconds, &nanos) && valid_timestamp(seconds, nanos);
    }
    case K_LIST: {
        Reader r = {v->string.p, v->string.p + v->string.n};
        uint32_t number;
        int wire;
        Slice item;
        int items = 0;
        while (r.p < r.end) {
            if (!next_field(&r, &number, &wire, &item))
                return 0;
            if (number != 1 || wire != 2 || ++items > MAX_LIST_ITEMS || utf8_chars(item) > self->max_chars)
                return 0; /* another field is an unknown one */
        }
        return 1;
    }
    default:
        return 1;
    }
}

/* The Python value ``getattr(value, kind)`` gives, for an allowed-values check (strings, numbers, bools). */
static PyObject *plain_value(const Value *v) {
    switch (v->kind) {
    case K_STRING:
        return text(v->string);
    case K_INT:
    case K_MONEY:
        return PyLong_FromLongLong((long long)(int64_t)v->bits);
    case K_DOUBLE: {
        double d;
        memcpy(&d, &v->bits, 8);
        return PyFloat_FromDouble(d);
    }
    case K_BOOL:
        return PyBool_FromLong(v->bits != 0);
    default:
        Py_RETURN_NONE;
    }
}

/* One property against its rule (a PropertyRule). 1 fits, 0 does not (or: not sure), -1 error. */
static int rule_ok(PyObject *rule, const Value *v) {
    PyObject *kinds = PyObject_GetAttr(rule, s_kinds);
    if (kinds == NULL)
        return -1;
    int ok = PySet_Contains(kinds, kind_names[v->kind]);
    Py_DECREF(kinds);
    if (ok != 1)
        return ok;
    PyObject *allowed = PyObject_GetAttr(rule, s_allowed);
    if (allowed == NULL)
        return -1;
    if (allowed != Py_None) {
        if (v->kind == K_TIMESTAMP || v->kind == K_LIST || !PyAnySet_Check(allowed)) {
            ok = 0; /* a schema cannot say this (compile_schema refuses it): the Python check words it */
        } else {
            PyObject *plain = plain_value(v);
            ok = plain == NULL ? -1 : PySet_Contains(allowed, plain);
            Py_XDECREF(plain);
        }
    }
    Py_DECREF(allowed);
    if (ok != 1 || v->kind != K_STRING)
        return ok;
    PyObject *max_length = PyObject_GetAttr(rule, s_max_length);
    if (max_length == NULL)
        return -1;
    long long limit = PyLong_AsLongLong(max_length);
    Py_DECREF(max_length);
    if (limit == -1 && PyErr_Occurred())
        return -1;
    return !(limit > 0 && utf8_chars(v->string) > limit);
}

typedef struct {
    Slice event_id, event_type, anonymous_id, user_id, session_id, occurred_at;
    int has_occurred, has_identities, has_context;
    uint64_t channel;
    Slice *properties;
    Py_ssize_t count, capacity;
} Fields;

/* Read the Event's top-level fields. 1 read, 0 not sure (fall back), -1 error. */
static int read_event(Checker *self, Slice data, int small, Fields *f, Slice *local) {
    Reader r = {data.p, data.p + data.n};
    uint32_t number;
    int wire;
    Slice bytes;
    f->properties = local;
    f->capacity = LOCAL_PROPERTIES;
    while (r.p < r.end) {
        if (!next_field(&r, &number, &wire, &bytes))
            return 0;
        if (number == 9) {
            if (wire != 0 || !read_varint(&r, &f->channel))
                return 0;
            continue;
        }
        if (number > LAST_EVENT_FIELD || wire != 2) /* an unknown field, or one sent with another wire type */
            return 0;
        switch (number) {
        case 1:
            f->event_id = bytes;
            break;
        case 2:
            f->event_type = bytes;
            break;
        case 3:
            f->occurred_at = bytes;
            f->has_occurred = 1;
            break;
        case 5:
            f->anonymous_id = bytes;
            break;
        case 6:
            f->user_id = bytes;
            break;
        case 7: {
            int ok = identity_ok(self, bytes);
            if (ok != 1)
                return ok;
            f->has_identities = 1;
            break;
        }
        case 8:
            f->session_id = bytes;
            break;
        case 10:
            if (f->count == f->capacity) {
                Py_ssize_t capacity = f->capacity * 2;
                Slice *grown = PyMem_Malloc((size_t)capacity * sizeof(Slice));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    return -1;
                }
                memcpy(grown, f->properties, (size_t)f->count * sizeof(Slice));
                if (f->properties != local)
                    PyMem_Free(f->properties);
                f->properties = grown;
                f->capacity = capacity;
            }
            f->properties[f->count++] = bytes;
            break;
        case 11:
            if (!context_ok(self, bytes, small))
                return 0;
            f->has_context = 1;
            break;
        default: /* 4 and 12-15: output-only fields, cleared before the check */
            return 0;
        }
    }
    return 1;
}

/* A map entry: its key and value. 0 for any other field: upb keeps such an entry whole among the event's unknown
 * fields, not in its properties. */
static int read_entry(Slice s, Slice *key, Slice *value) {
    Reader r = {s.p, s.p + s.n};
    uint32_t number;
    int wire;
    Slice bytes;
    key->n = 0;
    key->p = s.p;
    value->n = 0;
    value->p = s.p;
    while (r.p < r.end) {
        if (!next_field(&r, &number, &wire, &bytes))
            return 0;
        if (number == 1 || number == 2) {
            if (wire != 2)
                return 0;
            *(number == 1 ? key : value) = bytes;
        } else {
            return 0;
        }
    }
    return 1;
}

/* The properties' names (sorted, as the Python check gives them), each checked as the Python check would accept it.
 * NULL with no error set: not sure. */
static PyObject *check_properties(Checker *self, const Fields *f, PyObject *schema, int small) {
    PyObject *names = NULL, *rules = NULL, *reject_unknown = NULL;
    if (f->count > self->max_props)
        return NULL;
    if (schema != Py_None) {
        rules = PyObject_GetAttr(schema, s_rules);
        if (rules == NULL || !PyDict_Check(rules))
            goto fail;
        reject_unknown = PyObject_GetAttr(schema, s_reject_unknown);
        if (reject_unknown == NULL)
            goto fail;
    }
    names = PyList_New(f->count);
    if (names == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < f->count; i++) {
        Slice key, raw;
        Value value;
        if (!read_entry(f->properties[i], &key, &raw) || !read_value(raw, &value))
            goto not_sure;
        PyObject *name = text(key);
        if (name == NULL)
            goto fail;
        PyList_SET_ITEM(names, i, name);
        int known = PySet_Contains(self->good_names, name);
        if (known != 1) {
            if (known < 0)
                goto fail;
            goto not_sure;
        }
        /* the kinds checked even in a small event: ALWAYS_CHECKED */
        int check = !small || value.kind == K_DOUBLE || value.kind == K_TIMESTAMP || value.kind == K_LIST;
        if (check && !value_ok(self, &value))
            goto not_sure;
        if (rules != NULL) {
            PyObject *rule = PyDict_GetItemWithError(rules, name);
            if (rule == NULL) {
                if (PyErr_Occurred())
                    goto fail;
                int strict = PyObject_IsTrue(reject_unknown);
                if (strict != 0) {
                    if (strict < 0)
                        goto fail;
                    goto not_sure;
                }
                continue;
            }
            int ok = rule_ok(rule, &value);
            if (ok != 1) {
                if (ok < 0)
                    goto fail;
                goto not_sure;
            }
        }
    }
    Py_XDECREF(rules);
    Py_XDECREF(reject_unknown);
    /* In Python's order of the names (upb's deterministic order puts "amount_fen" before "amount"): protection
     * lists and refuses fields in this order, whichever check answered. */
    if (PyList_Sort(names) < 0) {
        Py_DECREF(names);
        return NULL;
    }
    return names;
not_sure:
    Py_XDECREF(names);
    Py_XDECREF(rules);
    Py_XDECREF(reject_unknown);
    return NULL;
fail:
    Py_XDECREF(names);
    Py_XDECREF(rules);
    Py_XDECREF(reject_unknown);
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "a compiled schema without rules");
    return NULL;
}

/* Every required property of the schema among ``names``. 1 yes, 0 no, -1 error. */
static int has_required(PyObject *schema, PyObject *names) {
    PyObject *required = PyObject_GetAttr(schema, s_required);
    if (required == NULL)
        return -1;
    PyObject *fast = PySequence_Fast(required, "a schema's required names");
    Py_DECREF(required);
    if (fast == NULL)
        return -1;
    int ok = 1;
    for (Py_ssize_t i = 0; ok == 1 && i < PySequence_Fast_GET_SIZE(fast); i++)
        ok = names == NULL ? 0 : PySequence_Contains(names, PySequence_Fast_GET_ITEM(fast, i));
    Py_DECREF(fast);
    return ok;
}

static PyObject *Checker_check(Checker *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "check(data: bytes, now_us: int)");
        return NULL;
    }
    PyObject *data = args[0];
    if (self->schema_for == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Checker that was not initialized");
        return NULL;
    }
    int overflow;
    long long now_us = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (now_us == -1 && PyErr_Occurred())
        return NULL;
    if (overflow || now_us > NOW_LIMIT_US || now_us < -NOW_LIMIT_US)
        Py_RETURN_NONE; /* no clock says this: the Python check answers with Python's ints */
    Slice all = {(const uint8_t *)PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)};
    if (all.n > self->max_bytes)
        Py_RETURN_NONE;
    int small = all.n <= self->max_chars;
    Slice local[LOCAL_PROPERTIES];
    Fields f;
    memset(&f, 0, sizeof f);
    PyObject *event_type = NULL, *schema = NULL, *names = NULL, *result = NULL;
    int read = read_event(self, all, small, &f, local);
    if (read != 1) {
        if (read == 0)
            result = Py_NewRef(Py_None);
        goto done;
    }
    int form = uuid_form(f.event_id);
    /* Ids as the Python check takes them without a look at Unicode: printable ASCII, at most 128 characters. */
    if (form == 0 || (f.user_id.n == 0 && f.anonymous_id.n == 0) || f.user_id.n > MAX_ID_CHARS ||
        f.anonymous_id.n > MAX_ID_CHARS || !printable_ascii(f.user_id) || !printable_ascii(f.anonymous_id) ||
        has_nul(f.session_id) || utf8_chars(f.session_id) > MAX_ID_CHARS || !f.has_occurred ||
        f.event_type.n == 0 || f.channel > INT32_MAX) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    int64_t seconds, nanos;
    if (!read_timestamp(f.occurred_at, &seconds, &nanos) || !valid_timestamp(seconds, nanos)) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    long long occurred_us = (long long)seconds * 1000000 + nanos / 1000;
    int flags = 0;
    if (occurred_us - now_us > self->future_us)
        flags = FLAG_OCCURRED_IN_FUTURE;
    else if (now_us - occurred_us > self->age_us)
        flags = FLAG_OCCURRED_TOO_OLD;
    if (flags && self->quarantine_out_of_range) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *channel = PyLong_FromUnsignedLongLong(f.channel);
    if (channel == NULL)
        goto done;
    int known = PySet_Contains(self->channels, channel);
    Py_DECREF(channel);
    if (known != 1) {
        if (known == 0)
            result = Py_NewRef(Py_None);
        goto done;
    }
    event_type = text(f.event_type);
    if (event_type == NULL)
        goto done;
    /* A type the Python check found valid; not a system type that carries a signature to verify. */
    known = PySet_Contains(self->good_types, event_type);
    int signed_type = known == 1 ? PySet_Contains(self->signed_types, event_type) : 0;
    if (known != 1 || signed_type != 0) {
        if (known == 0 || signed_type == 1)
            result = Py_NewRef(Py_None);
        goto done;
    }
    if (form == 2) { /* lower the id, encode again, ask again */
        result = Py_NewRef(Py_False);
        goto done;
    }
    schema = PyObject_CallOneArg(self->schema_for, event_type);
    if (schema == NULL)
        goto done;
    if (schema == Py_None && self->quarantine_unknown && f.event_type.p[0] != '$') {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (f.count) {
        names = check_properties(self, &f, schema, small);
        if (names == NULL) {
            if (!PyErr_Occurred())
                result = Py_NewRef(Py_None);
            goto done;
        }
    }
    if (schema != Py_None) {
        int ok = has_required(schema, names);
        if (ok != 1) {
            if (ok == 0)
                result = Py_NewRef(Py_None);
            goto done;
        }
    }
    PyObject *event_id = text(f.event_id);
    PyObject *user_id = event_id ? text(f.user_id) : NULL;
    PyObject *anonymous_id = user_id ? text(f.anonymous_id) : NULL;
    if (anonymous_id == NULL) {
        Py_XDECREF(event_id);
        Py_XDECREF(user_id);
        goto done;
    }
    PyObject *listed = names != NULL ? Py_NewRef(names) : PyTuple_New(0);
    if (listed == NULL) {
        Py_DECREF(event_id);
        Py_DECREF(user_id);
        Py_DECREF(anonymous_id);
        goto done;
    }
    /* (flags, data, occurred_us, schema, names, identities, event_id, event_type, user_id, anonymous_id) */
    result = Py_BuildValue("(iOLONONONN)", flags, data, occurred_us, schema, listed,
                           f.has_identities ? Py_True : Py_False, event_id, event_type, user_id, anonymous_id);
done:
    if (result == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear(); /* not UTF-8 where upb would have refused it: the Python check says what it is */
        result = Py_NewRef(Py_None);
    }
    if (f.properties != local)
        PyMem_Free(f.properties);
    Py_XDECREF(event_type);
    Py_XDECREF(schema);
    Py_XDECREF(names);
    return result;
}

static int Checker_init(Checker *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"max_chars",     "max_bytes",  "max_props",    "future_us",  "age_us",
                               "quarantine_out_of_range",     "quarantine_unknown",         "good_types",
                               "good_names",    "channels",   "id_types",     "signed_types", "schema_for",
                               NULL};
    Py_ssize_t max_chars, max_bytes, max_props;
    long long future_us, age_us;
    int quarantine_out_of_range, quarantine_unknown;
    PyObject *good_types, *good_names, *channels, *id_types, *signed_types, *schema_for;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$nnnLLppOOOOOO", keywords, &max_chars, &max_bytes, &max_props,
                                     &future_us, &age_us, &quarantine_out_of_range, &quarantine_unknown, &good_types,
                                     &good_names, &channels, &id_types, &signed_types, &schema_for))
        return -1;
    if (!PyAnySet_Check(good_types) || !PyAnySet_Check(good_names) || !PyAnySet_Check(channels) ||
        !PyAnySet_Check(id_types) || !PyAnySet_Check(signed_types) || !PyCallable_Check(schema_for)) {
        PyErr_SetString(PyExc_TypeError, "the names, types, channels and id types are sets; schema_for a callable");
        return -1;
    }
    /* A window longer than any clock's range never flags an event: as the Python check with its ints. */
    self->max_chars = max_chars;
    self->max_bytes = max_bytes;
    self->max_props = max_props;
    self->future_us = future_us > TIME_LIMIT_US ? TIME_LIMIT_US : future_us;
    self->age_us = age_us > TIME_LIMIT_US ? TIME_LIMIT_US : age_us;
    self->quarantine_out_of_range = quarantine_out_of_range;
    self->quarantine_unknown = quarantine_unknown;
    Py_XSETREF(self->good_types, Py_NewRef(good_types));
    Py_XSETREF(self->good_names, Py_NewRef(good_names));
    Py_XSETREF(self->channels, Py_NewRef(channels));
    Py_XSETREF(self->id_types, Py_NewRef(id_types));
    Py_XSETREF(self->signed_types, Py_NewRef(signed_types));
    Py_XSETREF(self->schema_for, Py_NewRef(schema_for));
    return 0;
}

static int Checker_traverse(Checker *self, visitproc visit, void *arg) {
    Py_VISIT(self->good_types);
    Py_VISIT(self->good_names);
    Py_VISIT(self->channels);
    Py_VISIT(self->id_types);
    Py_VISIT(self->signed_types);
    Py_VISIT(self->schema_for);
    return 0;
}

static int Checker_clear(Checker *self) {
    Py_CLEAR(self->good_types);
    Py_CLEAR(self->good_names);
    Py_CLEAR(self->channels);
    Py_CLEAR(self->id_types);
    Py_CLEAR(self->signed_types);
    Py_CLEAR(self->schema_for);
    return 0;
}

static void Checker_dealloc(Checker *self) {
    PyObject_GC_UnTrack(self);
    Checker_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* svc_common.protection.may_hold_personal_data, byte for byte: whether the encoding (past the event id, for the
 * digits) holds 11 digits in a row, 3-4-4 digits grouped by spaces or dashes, or "@", a domain label and a dot and a
 * letter. One pass in C instead of a translated copy and three searches (~0.7 µs an event). */
static inline int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static inline int is_gap(uint8_t c) { return c == ' ' || c == '-'; }
static inline int is_letter(uint8_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static inline int is_label(uint8_t c) { return is_letter(c) || is_digit(c) || c == '-'; }

static int digits_at(const uint8_t *p, Py_ssize_t count) {
    for (Py_ssize_t i = 0; i < count; i++)
        if (!is_digit(p[i]))
            return 0;
    return 1;
}

static PyObject *may_hold_personal_data(PyObject *module, PyObject *arg) {
    (void)module;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "may_hold_personal_data(encoded: bytes)");
        return NULL;
    }
    const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg);
    /* The event id (field 1, 36 bytes, written first) is a UUID: its hex digits are nobody's number. */
    Py_ssize_t start = n >= 2 && p[0] == '\n' && p[1] == '$' ? (n < 38 ? n : 38) : 0;
    Py_ssize_t run = 0;
    for (Py_ssize_t i = start; i < n; i++) {
        if (is_digit(p[i])) {
            if (++run >= 11)
                Py_RETURN_TRUE;
        } else {
            run = 0;
            /* a gap after three digits: 3-4-4 from i - 3 */
            if (is_gap(p[i]) && i - 3 >= start && i + 9 < n && digits_at(p + i - 3, 3) && digits_at(p + i + 1, 4) &&
                is_gap(p[i + 5]) && digits_at(p + i + 6, 4))
                Py_RETURN_TRUE;
        }
    }
    for (const uint8_t *at = memchr(p, '@', (size_t)n); at != NULL;
         at = memchr(at + 1, '@', (size_t)(n - (at + 1 - p)))) {
        Py_ssize_t label = 0, rest = n - (at + 1 - p);
        while (label < rest && label <= 63 && is_label(at[1 + label]))
            label++;
        if (label >= 1 && label <= 63 && label + 1 < rest && at[1 + label] == '.' && is_letter(at[2 + label]))
            Py_RETURN_TRUE;
    }
    Py_RETURN_FALSE;
}

static PyMethodDef module_methods[] = {
    {"may_hold_personal_data", (PyCFunction)may_hold_personal_data, METH_O,
     "may_hold_personal_data(encoded) -> bool: svc_common.protection.may_hold_personal_data in one pass"},
    {NULL, NULL, 0, NULL}};

static PyMethodDef Checker_methods[] = {
    {"check", (PyCFunction)(void (*)(void))Checker_check, METH_FASTCALL,
     "check(data, now_us) -> the accepted tuple, False (lower the id and ask again) or None (not sure)"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject CheckerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "svc_collect._fastcheck.Checker",
    .tp_basicsize = sizeof(Checker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The collector's event check for the events it can vouch for (svc_collect.validation).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Checker_init,
    .tp_dealloc = (destructor)Checker_dealloc,
    .tp_traverse = (traverseproc)Checker_traverse,
    .tp_clear = (inquiry)Checker_clear,
    .tp_methods = Checker_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastcheck",
                                    "The collector's event check in C (svc_collect.validation's fast path).", -1,
                                    module_methods};

PyMODINIT_FUNC PyInit__fastcheck(void) {
    for (int kind = 1; kind < 8; kind++)
        if ((kind_names[kind] = PyUnicode_InternFromString(KIND_NAMES[kind])) == NULL)
            return NULL;
    if (!(s_rules = PyUnicode_InternFromString("rules")) || !(s_required = PyUnicode_InternFromString("required")) ||
        !(s_reject_unknown = PyUnicode_InternFromString("reject_unknown")) ||
        !(s_kinds = PyUnicode_InternFromString("kinds")) || !(s_allowed = PyUnicode_InternFromString("allowed")) ||
        !(s_max_length = PyUnicode_InternFromString("max_length")))
        return NULL;
    if (PyType_Ready(&CheckerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyObject *kinds = Py_BuildValue("(sssssss)", KIND_NAMES[1], KIND_NAMES[2], KIND_NAMES[3], KIND_NAMES[4],
                                    KIND_NAMES[5], KIND_NAMES[6], KIND_NAMES[7]);
    PyObject *min_seconds = PyLong_FromLongLong(MIN_SECONDS), *max_seconds = PyLong_FromLongLong(MAX_SECONDS);
    PyObject *always = Py_BuildValue("(sss)", KIND_NAMES[K_DOUBLE], KIND_NAMES[K_TIMESTAMP], KIND_NAMES[K_LIST]);
    PyObject *time_limit = PyLong_FromLongLong(TIME_LIMIT_US);
    int failed = kinds == NULL || min_seconds == NULL || max_seconds == NULL || always == NULL || time_limit == NULL ||
                 PyModule_AddObjectRef(m, "ALWAYS_CHECKED", always) < 0 ||
                 PyModule_AddObjectRef(m, "TIME_LIMIT_US", time_limit) < 0 ||
                 PyModule_AddObjectRef(m, "Checker", (PyObject *)&CheckerType) < 0 ||
                 PyModule_AddObjectRef(m, "VALUE_KINDS", kinds) < 0 ||
                 PyModule_AddObjectRef(m, "MIN_SECONDS", min_seconds) < 0 ||
                 PyModule_AddObjectRef(m, "MAX_SECONDS", max_seconds) < 0 ||
                 PyModule_AddIntMacro(m, MAX_ID_CHARS) < 0 ||
                 PyModule_AddIntMacro(m, MAX_LIST_ITEMS) < 0 || PyModule_AddIntMacro(m, FLAG_OCCURRED_IN_FUTURE) < 0 ||
                 PyModule_AddIntMacro(m, FLAG_OCCURRED_TOO_OLD) < 0 || PyModule_AddIntMacro(m, LAST_EVENT_FIELD) < 0 ||
                 PyModule_AddIntMacro(m, LAST_CONTEXT_FIELD) < 0;
    Py_XDECREF(kinds);
    Py_XDECREF(min_seconds);
    Py_XDECREF(max_seconds);
    Py_XDECREF(always);
    Py_XDECREF(time_limit);
    if (failed) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
