// ftvs_sqlite.c serves an SQLite database as an ftvs virtual server: the ftvs guest ABI
// (guest/ABI.md) around the real SQLite library, compiled to a wasm32-wasi reactor.
//
// The database is an in-memory one, so it lives in guest memory, and with it in the
// snapshots, syncs, checkpoints and rollbacks the host takes of that memory. SQLite
// reaches the outside world only through the VFS below: its randomness (random(),
// randomblob(), the seed of its PRNG) comes from WASI's random_get and its clock
// (datetime('now'), julianday('now')) from WASI's clock_time_get, which the host feeds
// from the log entry, so every CoServer computes the same values.
//
// Routes (the body is SQL text, or JSON {"sql": "...", "args": [...] or {...}}):
//   POST /exec    {"changes": N, "last_insert_id": N}
//   POST /query   {"columns": [...], "rows": [[...], ...]}
//   GET  /healthz 200 ok
// Each request is one transaction: a statement that fails undoes the whole request and
// answers 400 with SQLite's message.

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <wasi/api.h>

#include "sqlite3.h"

#define EXPORT(name) __attribute__((export_name(name)))

// ---- The VFS: randomness and time from WASI, no files ----

static int vfs_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out) {
	(void)v, (void)name, (void)f, (void)flags, (void)out;
	return SQLITE_CANTOPEN; // every database and temporary file is in memory
}

static int vfs_delete(sqlite3_vfs *v, const char *name, int sync) {
	(void)v, (void)name, (void)sync;
	return SQLITE_OK;
}

static int vfs_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
	(void)v, (void)name, (void)flags;
	*out = 0;
	return SQLITE_OK;
}

static int vfs_fullpath(sqlite3_vfs *v, const char *name, int n, char *out) {
	(void)v;
	sqlite3_snprintf(n, out, "%s", name);
	return SQLITE_OK;
}

static int vfs_random(sqlite3_vfs *v, int n, char *out) {
	(void)v;
	if (__wasi_random_get((uint8_t *)out, (size_t)n) != 0) {
		memset(out, 0, (size_t)n);
	}
	return n;
}

static int vfs_sleep(sqlite3_vfs *v, int us) {
	(void)v;
	return us; // nothing waits on anything inside a guest
}

static int vfs_time64(sqlite3_vfs *v, sqlite3_int64 *out) {
	(void)v;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts); // the virtual clock (guest/ABI.md, section 2)
	// Milliseconds since the Julian day epoch, as SQLite's own VFSes count them.
	*out = 210866760000000LL + (sqlite3_int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return SQLITE_OK;
}

static int vfs_time(sqlite3_vfs *v, double *out) {
	sqlite3_int64 ms;
	vfs_time64(v, &ms);
	*out = ms / 86400000.0;
	return SQLITE_OK;
}

static int vfs_lasterror(sqlite3_vfs *v, int n, char *out) {
	(void)v, (void)n, (void)out;
	return 0;
}

static sqlite3_vfs ftvs_vfs = {
	.iVersion = 2,
	.szOsFile = sizeof(sqlite3_file),
	.mxPathname = 512,
	.zName = "ftvs",
	.xOpen = vfs_open,
	.xDelete = vfs_delete,
	.xAccess = vfs_access,
	.xFullPathname = vfs_fullpath,
	.xRandomness = vfs_random,
	.xSleep = vfs_sleep,
	.xCurrentTime = vfs_time,
	.xGetLastError = vfs_lasterror,
	.xCurrentTimeInt64 = vfs_time64,
};

// SQLite is built with SQLITE_OS_OTHER: these two replace its OS layer.
int sqlite3_os_init(void) { return sqlite3_vfs_register(&ftvs_vfs, 1); }
int sqlite3_os_end(void) { return SQLITE_OK; }

// ---- Output buffers ----

// buf is a growing byte buffer. A failed allocation traps: the host then undoes the
// entry (guest/ABI.md, section 5), which is what a guest out of memory should get.
typedef struct {
	char *p;
	size_t n, cap;
} buf;

// The response is built after a gap of headroom bytes, so that the status line and
// headers can be written in front of the body once its length is known.
enum { headroom = 160 };

static void reserve(buf *b, size_t more) {
	if (b->n + more <= b->cap) {
		return;
	}
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->n + more) {
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (p == NULL) {
		__builtin_trap();
	}
	b->p = p, b->cap = cap;
}

static void put(buf *b, const void *s, size_t n) {
	reserve(b, n);
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static void putc_(buf *b, char c) { put(b, &c, 1); }

static void put_i64(buf *b, long long v) {
	char tmp[24];
	int n = snprintf(tmp, sizeof tmp, "%lld", v);
	put(b, tmp, (size_t)n);
}

// put_json_string writes s as a JSON string.
static void put_json_string(buf *b, const char *s, size_t n) {
	static const char hex[] = "0123456789abcdef";
	putc_(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			putc_(b, '\\');
			putc_(b, (char)c);
		} else if (c == '\n') {
			puts_(b, "\\n");
		} else if (c == '\r') {
			puts_(b, "\\r");
		} else if (c == '\t') {
			puts_(b, "\\t");
		} else if (c < 0x20) {
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			put(b, u, 6);
		} else {
			putc_(b, (char)c);
		}
	}
	putc_(b, '"');
}

static void put_base64(buf *b, const unsigned char *s, size_t n) {
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	putc_(b, '"');
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n) v |= s[i + 2];
		char q[4] = {a[v >> 18], a[(v >> 12) & 63], i + 1 < n ? a[(v >> 6) & 63] : '=', i + 2 < n ? a[v & 63] : '='};
		put(b, q, 4);
	}
	putc_(b, '"');
}

// ---- Guest state ----

static sqlite3 *db;
static unsigned char *input; // the host's input buffer (ftvs_alloc)
static buf resp;             // the last response
static unsigned char *frame; // the last result frame of another export
static unsigned char *state; // the last state export's frame (SQLite's allocation)

// Transaction control is the shim's: each request is one transaction, so a user's
// BEGIN, COMMIT, ROLLBACK or SAVEPOINT would break that promise. ATTACH would make state
// outside the main database, which the state export does not carry, and a journal mode
// of OFF would make a failed statement impossible to undo.
static int shim_sql;        // nonzero while the shim runs its own statements
static const char *refused; // why the authorizer refused a user's statement

static int authorize(void *arg, int action, const char *a, const char *b, const char *c, const char *d) {
	(void)arg, (void)b, (void)c, (void)d;
	if (shim_sql) {
		return SQLITE_OK;
	}
	switch (action) {
	case SQLITE_TRANSACTION:
	case SQLITE_SAVEPOINT:
		refused = "BEGIN, COMMIT, ROLLBACK and SAVEPOINT are not allowed: each request is one transaction, committed when every statement in it succeeded";
		return SQLITE_DENY;
	case SQLITE_ATTACH:
	case SQLITE_DETACH:
		refused = "ATTACH and DETACH are not allowed: the virtual server's state is its main database";
		return SQLITE_DENY;
	case SQLITE_PRAGMA:
		if (a != NULL && strcasecmp(a, "journal_mode") == 0) {
			refused = "PRAGMA journal_mode is not allowed: the shim needs the journal to undo a failed request";
			return SQLITE_DENY;
		}
	}
	return SQLITE_OK;
}

static int shim_exec(const char *sql) {
	shim_sql = 1;
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	shim_sql = 0;
	return rc;
}

__attribute__((constructor)) static void init(void) {
	if (sqlite3_initialize() != SQLITE_OK ||
	    sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		fprintf(stderr, "sqlite: cannot open the in-memory database: %s\n", db ? sqlite3_errmsg(db) : "out of memory");
		__builtin_trap();
	}
	sqlite3_set_authorizer(db, authorize, NULL);
}

EXPORT("ftvs_alloc")
unsigned char *ftvs_alloc(int32_t size) {
	free(input);
	free(frame);
	sqlite3_free(state);
	frame = NULL, state = NULL;
	input = malloc(size > 0 ? (size_t)size : 1);
	if (input == NULL) {
		__builtin_trap();
	}
	return input;
}

static int64_t packed(const void *p, size_t n) {
	return (int64_t)(((uint64_t)(uintptr_t)p << 32) | (uint32_t)n);
}

// ---- HTTP ----

typedef struct {
	const char *method, *path, *ctype, *body;
	size_t method_n, path_n, ctype_n, body_n;
} request;

static int parse_request(const char *p, size_t n, request *r) {
	memset(r, 0, sizeof *r);
	const char *end = p + n, *eol = memchr(p, '\n', n);
	if (eol == NULL) {
		return -1;
	}
	const char *sp = memchr(p, ' ', (size_t)(eol - p));
	if (sp == NULL) {
		return -1;
	}
	r->method = p, r->method_n = (size_t)(sp - p);
	r->path = sp + 1;
	const char *sp2 = memchr(r->path, ' ', (size_t)(eol - r->path));
	if (sp2 == NULL) {
		return -1;
	}
	r->path_n = (size_t)(sp2 - r->path);
	const char *q = memchr(r->path, '?', r->path_n);
	if (q != NULL) {
		r->path_n = (size_t)(q - r->path);
	}
	long long clen = -1;
	for (const char *line = eol + 1; line < end;) {
		const char *le = memchr(line, '\n', (size_t)(end - line));
		if (le == NULL) {
			return -1;
		}
		size_t ln = (size_t)(le - line);
		if (ln > 0 && line[ln - 1] == '\r') {
			ln--;
		}
		if (ln == 0) {
			r->body = le + 1;
			r->body_n = (size_t)(end - r->body);
			return clen < 0 || (size_t)clen == r->body_n ? 0 : -1;
		}
		const char *colon = memchr(line, ':', ln);
		if (colon != NULL) {
			size_t kn = (size_t)(colon - line);
			const char *v = colon + 1, *ve = line + ln;
			while (v < ve && (*v == ' ' || *v == '\t')) v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
			if (kn == 14 && strncasecmp(line, "content-length", 14) == 0) {
				clen = strtoll(v, NULL, 10);
			} else if (kn == 12 && strncasecmp(line, "content-type", 12) == 0) {
				r->ctype = v, r->ctype_n = (size_t)(ve - v);
			}
		}
		line = le + 1;
	}
	return -1;
}

static int is(const char *s, size_t n, const char *lit) { return n == strlen(lit) && memcmp(s, lit, n) == 0; }

static const char *reason(int status) {
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	}
	return "Internal Server Error";
}

// respond finishes resp (whose body starts at headroom) and returns the packed response.
static int64_t respond(int status, const char *ctype, const char *allow, int abort) {
	char head[headroom];
	size_t body = resp.n - headroom;
	int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\nContent-Type: %s\r\n\r\n",
	                 status, reason(status), allow ? "Allow: " : "", allow ? allow : "", allow ? "\r\n" : "", body, ctype);
	char *start = resp.p + headroom - n;
	memcpy(start, head, (size_t)n);
	int64_t r = packed(start, (size_t)n + body);
	return abort ? r | (1LL << 31) : r;
}

static void begin_body(void) {
	if (resp.cap > (16u << 20)) { // do not keep a large response's buffer for good
		free(resp.p);
		resp = (buf){0};
	}
	resp.n = 0;
	reserve(&resp, headroom);
	resp.n = headroom;
}

static int64_t error_response(int status, const char *msg, int abort) {
	begin_body();
	puts_(&resp, "{\"error\":");
	put_json_string(&resp, msg, strlen(msg));
	puts_(&resp, "}\n");
	return respond(status, "application/json", NULL, abort);
}

// ---- Statements ----

// call is one request's SQL and its arguments. args is a JSON array or object (or
// NULL): its values are bound to the statement's parameters by position or by name.
typedef struct {
	char *sql;
	char *args;
	char err[512];
	int nomem; // SQLite ran out of guest memory
} call;

static void fail(call *c, const char *msg) {
	if (c->err[0] == 0) {
		snprintf(c->err, sizeof c->err, "%s", msg);
	}
}

// parse_json_body reads {"sql": "...", "args": ...} with SQLite's own JSON functions.
static int parse_json_body(call *c, const char *body, size_t n) {
	sqlite3_stmt *st = NULL;
	shim_sql = 1;
	int rc = sqlite3_prepare_v2(db, "SELECT json_type(?1,'$.sql'), json_extract(?1,'$.sql'), json_type(?1,'$.args'), json_extract(?1,'$.args')", -1, &st, NULL);
	shim_sql = 0;
	if (rc != SQLITE_OK) {
		fail(c, sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_text(st, 1, body, (int)n, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		snprintf(c->err, sizeof c->err, "the body is not valid JSON (%s): send {\"sql\": \"...\", \"args\": [...]} or plain SQL text", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return -1;
	}
	const char *st_type = (const char *)sqlite3_column_text(st, 0);
	if (st_type == NULL || strcmp(st_type, "text") != 0) {
		fail(c, "the JSON body needs \"sql\", a string: {\"sql\": \"...\", \"args\": [...]}");
		sqlite3_finalize(st);
		return -1;
	}
	c->sql = strdup((const char *)sqlite3_column_text(st, 1));
	const char *at = (const char *)sqlite3_column_text(st, 2);
	if (at != NULL && strcmp(at, "null") == 0) {
		at = NULL; // "args": null is no arguments
	}
	if (at != NULL) {
		if (strcmp(at, "array") != 0 && strcmp(at, "object") != 0) {
			fail(c, "\"args\" must be an array (positional parameters) or an object (named parameters)");
			sqlite3_finalize(st);
			return -1;
		}
		c->args = strdup((const char *)sqlite3_column_text(st, 3));
	}
	sqlite3_finalize(st);
	if (c->sql == NULL || (at != NULL && c->args == NULL)) {
		__builtin_trap();
	}
	return 0;
}

// bind_args binds c->args to st's parameters.
static int bind_args(call *c, sqlite3_stmt *st) {
	sqlite3_stmt *it = NULL;
	shim_sql = 1;
	int rc = sqlite3_prepare_v2(db, "SELECT key, type, atom FROM json_each(?1)", -1, &it, NULL);
	shim_sql = 0;
	if (rc != SQLITE_OK) {
		fail(c, sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_text(it, 1, c->args, -1, SQLITE_STATIC);
	int bound = 0;
	while ((rc = sqlite3_step(it)) == SQLITE_ROW) {
		int idx;
		char name[256];
		if (sqlite3_column_type(it, 0) == SQLITE_INTEGER) {
			idx = sqlite3_column_int(it, 0) + 1;
			snprintf(name, sizeof name, "args[%d]", idx - 1);
		} else {
			const char *key = (const char *)sqlite3_column_text(it, 0);
			const char prefixes[] = ":@$";
			idx = 0;
			for (int i = 0; i < 3 && idx == 0; i++) {
				snprintf(name, sizeof name, "%c%s", prefixes[i], key);
				idx = sqlite3_bind_parameter_index(st, name);
			}
			snprintf(name, sizeof name, "args.%s", key);
			if (idx == 0) {
				snprintf(c->err, sizeof c->err, "%s: the statement has no parameter :%s, @%s or $%s", name, key, key, key);
				break;
			}
		}
		if (idx > sqlite3_bind_parameter_count(st)) {
			snprintf(c->err, sizeof c->err, "%s: the statement has %d parameters", name, sqlite3_bind_parameter_count(st));
			break;
		}
		const char *type = (const char *)sqlite3_column_text(it, 1);
		if (strcmp(type, "null") == 0) {
			rc = sqlite3_bind_null(st, idx);
		} else if (strcmp(type, "true") == 0 || strcmp(type, "false") == 0) {
			rc = sqlite3_bind_int(st, idx, type[0] == 't');
		} else if (strcmp(type, "integer") == 0) {
			rc = sqlite3_bind_int64(st, idx, sqlite3_column_int64(it, 2));
		} else if (strcmp(type, "real") == 0) {
			rc = sqlite3_bind_double(st, idx, sqlite3_column_double(it, 2));
		} else if (strcmp(type, "text") == 0) {
			rc = sqlite3_bind_text(st, idx, (const char *)sqlite3_column_text(it, 2), sqlite3_column_bytes(it, 2), SQLITE_TRANSIENT);
		} else {
			snprintf(c->err, sizeof c->err, "%s: a parameter is a string, number, boolean or null, not an %s", name, type);
			break;
		}
		if (rc != SQLITE_OK) {
			snprintf(c->err, sizeof c->err, "%s: %s", name, sqlite3_errmsg(db));
			break;
		}
		bound++;
	}
	if (c->err[0] == 0 && rc != SQLITE_DONE) {
		fail(c, sqlite3_errmsg(db));
	}
	sqlite3_finalize(it);
	return c->err[0] ? -1 : bound;
}

static void put_value(buf *b, sqlite3_stmt *st, int i) {
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		put_i64(b, sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT: {
		double v = sqlite3_column_double(st, i);
		if (!isfinite(v)) {
			puts_(b, "null");
			break;
		}
		char tmp[32];
		int n = snprintf(tmp, sizeof tmp, "%.17g", v);
		put(b, tmp, (size_t)n);
		if (strpbrk(tmp, ".eE") == NULL) {
			puts_(b, ".0"); // keep a REAL a JSON number with a fraction
		}
		break;
	}
	case SQLITE_TEXT:
		put_json_string(b, (const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
		break;
	case SQLITE_BLOB:
		put_base64(b, sqlite3_column_blob(st, i), (size_t)sqlite3_column_bytes(st, i));
		break;
	default:
		puts_(b, "null");
	}
}

// run_statements runs every statement of c->sql. For a query (query != 0) there must be
// exactly one, it must only read, and its rows go to resp.
static void run_statements(call *c, int query) {
	const char *sql = c->sql, *tail = NULL;
	int statements = 0;
	while (c->err[0] == 0 && sql != NULL && *sql != 0) {
		sqlite3_stmt *st = NULL;
		refused = NULL;
		if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK) {
			c->nomem = sqlite3_errcode(db) == SQLITE_NOMEM;
			fail(c, refused ? refused : sqlite3_errmsg(db));
			break;
		}
		sql = tail;
		if (st == NULL) { // only white space or a comment
			continue;
		}
		if (++statements > 1 && (query || c->args != NULL)) {
			fail(c, query ? "/query runs one statement; send the others separately"
			              : "\"args\" go with one statement; send the others separately");
		} else if (query && !sqlite3_stmt_readonly(st)) {
			fail(c, "/query runs statements that only read; send this one to /exec");
		} else if (c->args != NULL && bind_args(c, st) < 0) {
			// c->err says why
		} else if (query) {
			int cols = sqlite3_column_count(st);
			puts_(&resp, "{\"columns\":[");
			for (int i = 0; i < cols; i++) {
				if (i > 0) putc_(&resp, ',');
				const char *name = sqlite3_column_name(st, i);
				put_json_string(&resp, name, strlen(name));
			}
			puts_(&resp, "],\"rows\":[");
			int rc, rows = 0;
			while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
				puts_(&resp, rows++ ? ",[" : "[");
				for (int i = 0; i < cols; i++) {
					if (i > 0) putc_(&resp, ',');
					put_value(&resp, st, i);
				}
				putc_(&resp, ']');
			}
			puts_(&resp, "]}\n");
			if (rc != SQLITE_DONE) {
				c->nomem = rc == SQLITE_NOMEM;
				fail(c, sqlite3_errmsg(db));
			}
		} else {
			int rc;
			while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			}
			if (rc != SQLITE_DONE) {
				c->nomem = rc == SQLITE_NOMEM;
				fail(c, sqlite3_errmsg(db));
			}
		}
		sqlite3_finalize(st);
	}
	if (c->err[0] == 0 && statements == 0) {
		fail(c, "no SQL statement in the request");
	}
}

// serve runs one /exec or /query request as one transaction.
static int64_t serve(const request *r, int query) {
	call c = {0};
	int json = (r->ctype_n >= 16 && strncasecmp(r->ctype, "application/json", 16) == 0);
	if (json) {
		parse_json_body(&c, r->body, r->body_n);
	} else if ((c.sql = malloc(r->body_n + 1)) == NULL) {
		__builtin_trap();
	} else {
		memcpy(c.sql, r->body, r->body_n);
		c.sql[r->body_n] = 0;
	}
	begin_body();
	if (c.err[0] == 0) {
		sqlite3_int64 before = sqlite3_total_changes64(db);
		if (shim_exec("SAVEPOINT ftvs_request") != SQLITE_OK) {
			fail(&c, sqlite3_errmsg(db));
		} else {
			run_statements(&c, query);
			if (c.err[0] == 0 && shim_exec("RELEASE ftvs_request") != SQLITE_OK) {
				fail(&c, sqlite3_errmsg(db));
			}
		}
		if (c.err[0] == 0 && !query) {
			puts_(&resp, "{\"changes\":");
			put_i64(&resp, sqlite3_total_changes64(db) - before);
			puts_(&resp, ",\"last_insert_id\":");
			put_i64(&resp, sqlite3_last_insert_rowid(db));
			puts_(&resp, "}\n");
		}
	}
	free(c.sql);
	free(c.args);
	if (c.err[0] == 0) {
		return respond(200, "application/json", NULL, 0);
	}
	// Out of guest memory half way: the host undoes the whole entry (the abort flag),
	// which also gives back what the heap grew by.
	if (c.nomem) {
		snprintf(c.err, sizeof c.err, "out of guest memory (the virtual server's memory limit); the request was undone");
		return error_response(500, c.err, 1);
	}
	// Undo the request. Should that fail, or leave a transaction open, the abort flag
	// has the host undo the whole entry instead.
	int undone = sqlite3_get_autocommit(db) ||
	             (shim_exec("ROLLBACK TO ftvs_request") == SQLITE_OK && shim_exec("RELEASE ftvs_request") == SQLITE_OK);
	return error_response(400, c.err, !undone || !sqlite3_get_autocommit(db));
}

EXPORT("ftvs_handle")
int64_t ftvs_handle(const char *p, int32_t n) {
	request r;
	if (parse_request(p, (size_t)n, &r) < 0) {
		return error_response(400, "malformed HTTP request", 0);
	}
	int post = is(r.method, r.method_n, "POST");
	if (is(r.path, r.path_n, "/exec") || is(r.path, r.path_n, "/query")) {
		if (!post) {
			begin_body();
			puts_(&resp, "{\"error\":\"use POST\"}\n");
			return respond(405, "application/json", "POST", 0);
		}
		return serve(&r, r.path_n == 6);
	}
	if (is(r.path, r.path_n, "/healthz")) {
		begin_body();
		puts_(&resp, "ok\n");
		return respond(200, "text/plain; charset=utf-8", NULL, 0);
	}
	return error_response(404, "no such route: POST /exec or /query with SQL, GET /healthz", 0);
}

// ---- State transfer and health ----

static int64_t frame_error(const char *msg) {
	size_t n = strlen(msg);
	free(frame);
	if ((frame = malloc(n + 1)) == NULL) {
		__builtin_trap();
	}
	frame[0] = 1;
	memcpy(frame + 1, msg, n);
	return packed(frame, n + 1);
}

// ftvs_export_state returns the database file's bytes (sqlite3_serialize).
EXPORT("ftvs_export_state")
int64_t ftvs_export_state(void) {
	sqlite3_int64 n = 0;
	sqlite3_free(state);
	state = NULL;
	unsigned char *p = sqlite3_serialize(db, "main", &n, 0);
	if (p == NULL) {
		return frame_error("sqlite3_serialize failed: out of guest memory");
	}
	// Make room for the frame's status byte in the same block (no second copy).
	unsigned char *f = sqlite3_realloc64(p, (sqlite3_uint64)n + 1);
	if (f == NULL) {
		sqlite3_free(p);
		return frame_error("out of guest memory for the state's frame");
	}
	memmove(f + 1, f, (size_t)n);
	f[0] = 0;
	state = f;
	return packed(f, (size_t)n + 1);
}

// ftvs_import_state replaces the database with one exported by ftvs_export_state.
EXPORT("ftvs_import_state")
int64_t ftvs_import_state(const unsigned char *p, int32_t n) {
	sqlite3 *src = NULL;
	char msg[512] = "";
	if (sqlite3_open_v2("import", &src, SQLITE_OPEN_READWRITE, "memdb") != SQLITE_OK ||
	    sqlite3_deserialize(src, "main", (unsigned char *)p, n, n, SQLITE_DESERIALIZE_READONLY) != SQLITE_OK) {
		snprintf(msg, sizeof msg, "open the imported database: %s", src ? sqlite3_errmsg(src) : "out of memory");
	} else {
		sqlite3_backup *b = sqlite3_backup_init(db, "main", src, "main");
		if (b == NULL) {
			snprintf(msg, sizeof msg, "import the database: %s", sqlite3_errmsg(db));
		} else {
			int rc = sqlite3_backup_step(b, -1);
			sqlite3_backup_finish(b);
			if (rc != SQLITE_DONE) {
				snprintf(msg, sizeof msg, "import the database: %s", sqlite3_errstr(rc));
			}
		}
	}
	sqlite3_close(src);
	if (msg[0]) {
		return frame_error(msg);
	}
	free(frame);
	if ((frame = malloc(1)) == NULL) {
		__builtin_trap();
	}
	frame[0] = 0;
	return packed(frame, 1);
}

// ftvs_health answers ok when the database answers a query.
EXPORT("ftvs_health")
int64_t ftvs_health(void) {
	shim_sql = 1;
	int rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
	shim_sql = 0;
	if (rc != SQLITE_OK) {
		return frame_error(sqlite3_errmsg(db));
	}
	free(frame);
	if ((frame = malloc(1)) == NULL) {
		__builtin_trap();
	}
	frame[0] = 0;
	return packed(frame, 1);
}
