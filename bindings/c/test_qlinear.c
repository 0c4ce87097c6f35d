/*
 * C harness for the qlinear C ABI: exercises every exported function and every error path,
 * checks forward against a plain C dequantize-and-multiply reference (double precision),
 * the dyn8 error bound, f16/bf16 forwards, concurrent forwards, a host job system and a
 * host allocator.
 *
 * Build (tests/c_abi.rs does this):
 *   gcc -std=c99 -Wall -Wextra -Werror -Iinclude bindings/c/test_qlinear.c \
 *       -Ltarget/debug -lqlinear -Wl,-rpath,<dir with libqlinear.so.0> -lpthread -lm
 * Prints one line per check and a final "N passed, M failed"; exits 1 on any failure.
 * Runs clean under: valgrind --leak-check=full --error-exitcode=1
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlinear.h"

/* The few calls that differ between POSIX and Windows (mingw-w64 with winpthreads). */
#ifdef _WIN32
#include <malloc.h>
#include <process.h>
static void *aligned_block(size_t align, size_t size) { return _aligned_malloc(size, align); }
static void aligned_block_free(void *p) { _aligned_free(p); }
#define process_id _getpid
#define TEMP_ENV "TEMP"
#else
#include <unistd.h>
static void *aligned_block(size_t align, size_t size) {
    void *p = NULL;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}
static void aligned_block_free(void *p) { free(p); }
#define process_id getpid
#define TEMP_ENV "TMPDIR"
#endif

/* `<temporary directory>/<name>-<process id>` in `out` (of `cap` bytes). */
static void temp_path(char *out, size_t cap, const char *name) {
    const char *dir = getenv(TEMP_ENV);
    snprintf(out, cap, "%s/%s-%ld", dir && *dir ? dir : "/tmp", name, (long)process_id());
}

/* ---------------------------------------------------------------- check helpers */

static int g_passed = 0;
static int g_failed = 0;

static void check_impl(int ok, int line, const char *fmt, ...) {
    va_list ap;
    printf("%s ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (ok) {
        g_passed++;
        printf("\n");
    } else {
        g_failed++;
        printf("  [line %d; last error: %s]\n", line, qlinear_last_error_message());
    }
}
#define CHECK(cond, ...) check_impl((cond) != 0, __LINE__, __VA_ARGS__)

static const char *status_name(qlinear_status s) {
    switch (s) {
    case QLINEAR_OK: return "OK";
    case QLINEAR_ERR_NULL_ARGUMENT: return "NULL_ARGUMENT";
    case QLINEAR_ERR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case QLINEAR_ERR_UNSUPPORTED: return "UNSUPPORTED";
    case QLINEAR_ERR_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case QLINEAR_ERR_IO: return "IO";
    case QLINEAR_ERR_CORRUPT: return "CORRUPT";
    case QLINEAR_ERR_INTERNAL: return "INTERNAL";
    }
    return "?";
}

/* Checks a call's status; a failure must also leave a non-empty last error message. */
static void expect_impl(qlinear_status got, qlinear_status want, int line, const char *what) {
    int ok = got == want;
    if (ok && want != QLINEAR_OK) {
        const char *m = qlinear_last_error_message();
        ok = m != NULL && m[0] != '\0';
    }
    check_impl(ok, line, "%s -> %s (want %s)", what, status_name(got), status_name(want));
}
#define EXPECT(call, want) expect_impl((call), (want), __LINE__, #call)

/* Stops the run when a step later checks depend on fails. */
#define REQUIRE(call)                                                                        \
    do {                                                                                     \
        qlinear_status s_ = (call);                                                          \
        if (s_ != QLINEAR_OK) {                                                              \
            printf("FAIL %s -> %s: %s (line %d), stopping\n", #call, status_name(s_),          \
                   qlinear_last_error_message(), __LINE__);                                 \
            printf("%d passed, %d failed\n", g_passed, g_failed + 1);                        \
            exit(1);                                                                         \
        }                                                                                    \
        g_passed++;                                                                          \
    } while (0)

/* ---------------------------------------------------------------- data helpers */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static float *rand_vec(size_t n, float scale) {
    float *v = malloc(n * sizeof *v);
    size_t i;
    for (i = 0; i < n; i++) v[i] = frand() * scale;
    return v;
}

/* f16 / bf16 bit patterns <-> float. Only normal values are produced and decoded here. */
static float f16_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15), exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    float v;
    if (exp == 0) v = ldexpf((float)man, -24);
    else if (exp == 31) v = man ? NAN : INFINITY;
    else v = ldexpf((float)(man | 0x400), (int)exp - 25);
    return sign ? -v : v;
}
static float bf16_to_float(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
/* Random normal f16 with magnitude in [2^-6, 2). */
static uint16_t rand_f16(void) {
    uint16_t sign = frand() < 0 ? 0x8000 : 0, exp = (uint16_t)(9 + (g_rng % 7)),
             man = (uint16_t)((g_rng >> 8) & 0x3FF);
    frand();
    return (uint16_t)(sign | (exp << 10) | man);
}
/* Random normal bf16 with magnitude in [2^-6, 2). */
static uint16_t rand_bf16(void) {
    uint16_t sign = frand() < 0 ? 0x8000 : 0, exp = (uint16_t)(121 + (g_rng % 7)),
             man = (uint16_t)((g_rng >> 8) & 0x7F);
    frand();
    return (uint16_t)(sign | (exp << 7) | man);
}

static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

/* ---------------------------------------------------------------- reference */

/* The logical layout of a quantized layer, copied out through the C ABI. */
typedef struct {
    size_t n, k, codes_len, scales_len, zeros_len, group_size;
    uint32_t bits, format, granularity, scale_dtype, mode;
    bool symmetric;
    uint8_t *codes;
    float *scales;
    int8_t *zeros;
    int8_t levels[16]; /* QLINEAR_FORMAT_CB4 only */
} layout;

static void layout_get(const qlinear_quantized_linear *l, layout *L) {
    memset(L, 0, sizeof *L);
    REQUIRE(qlinear_quantized_linear_out_features(l, &L->n));
    REQUIRE(qlinear_quantized_linear_in_features(l, &L->k));
    REQUIRE(qlinear_quantized_linear_bits(l, &L->bits));
    REQUIRE(qlinear_quantized_linear_granularity(l, &L->granularity));
    REQUIRE(qlinear_quantized_linear_group_size(l, &L->group_size));
    REQUIRE(qlinear_quantized_linear_scale_dtype(l, &L->scale_dtype));
    REQUIRE(qlinear_quantized_linear_activation_mode(l, &L->mode));
    REQUIRE(qlinear_quantized_linear_symmetric(l, &L->symmetric));
    REQUIRE(qlinear_quantized_linear_layout(l, &L->codes_len, &L->scales_len, &L->zeros_len));
    L->codes = malloc(L->codes_len);
    L->scales = malloc(L->scales_len * sizeof(float));
    L->zeros = L->zeros_len ? malloc(L->zeros_len) : NULL;
    REQUIRE(qlinear_quantized_linear_copy_codes(l, L->codes, L->codes_len));
    REQUIRE(qlinear_quantized_linear_copy_scales(l, L->scales, L->scales_len));
    REQUIRE(qlinear_quantized_linear_copy_zero_points(l, L->zeros, L->zeros_len));
    REQUIRE(qlinear_quantized_linear_format(l, &L->format));
    if (L->format == QLINEAR_FORMAT_CB4) REQUIRE(qlinear_quantized_linear_copy_codebook(l, L->levels, 16));
}
static void layout_free(layout *L) {
    free(L->codes);
    free(L->scales);
    free(L->zeros);
}

/* w[r][c] = scale * (q - zero), or scale * level[q] for a codebook, straight from the
 * documented layout. */
static double dequant(const layout *L, size_t r, size_t c) {
    int q;
    size_t gs, groups, si;
    if (L->bits == 8) {
        q = (int8_t)L->codes[r * L->k + c];
    } else {
        uint8_t b = L->codes[r * ((L->k + 1) / 2) + c / 2];
        int nib = (c % 2 == 0) ? (b & 0x0F) : (b >> 4);
        q = L->format == QLINEAR_FORMAT_CB4 ? L->levels[nib] : nib >= 8 ? nib - 16 : nib;
    }
    gs = L->granularity == QLINEAR_GRANULARITY_GROUP ? L->group_size : L->k;
    groups = (L->k + gs - 1) / gs;
    si = L->granularity == QLINEAR_GRANULARITY_PER_TENSOR ? 0 : r * groups + c / gs;
    return (double)L->scales[si] * (double)(q - (L->zeros ? L->zeros[si] : 0));
}

/* Checks y against the reference: exact within 1e-4 of sum|x||w|; dyn8 within the
 * documented bound (max|x_row|/127/2) * sum|w| plus the same rounding slack. */
static void check_vs_reference(const char *name, const qlinear_quantized_linear *l, const float *x,
                               size_t rows, const float *bias, const float *y) {
    layout L;
    size_t r, j, c, bad = 0;
    double worst = 0;
    layout_get(l, &L);
    for (r = 0; r < rows; r++) {
        double xmax = 0;
        for (c = 0; c < L.k; c++) xmax = fmax(xmax, fabs(x[r * L.k + c]));
        for (j = 0; j < L.n; j++) {
            double ref = bias ? bias[j] : 0, mag = bias ? fabs(bias[j]) : 0, sw = 0, tol, err;
            for (c = 0; c < L.k; c++) {
                double w = dequant(&L, j, c);
                ref += (double)x[r * L.k + c] * w;
                mag += fabs((double)x[r * L.k + c] * w);
                sw += fabs(w);
            }
            tol = 1e-4 * mag + 1e-6;
            /* Both dyn8 modes: half a step of the row's largest activation bounds the
             * block-wise steps too. */
            if (L.mode != QLINEAR_ACTIVATION_EXACT) tol += xmax / 127.0 / 2.0 * sw;
            err = fabs((double)y[r * L.n + j] - ref);
            if (err > tol) bad++;
            if (err / tol > worst) worst = err / tol;
        }
    }
    CHECK(bad == 0, "%s: %zu x %zu, %u bits, %s: forward matches C reference (worst err/tol %.3f)", name,
          L.n, L.k, L.bits, L.mode == QLINEAR_ACTIVATION_EXACT ? "exact" : "dyn8", worst);
    layout_free(&L);
}

/* Rebuilds a layer from its copied-out parts; its forward must be bit-identical. */
static void check_from_parts(const char *name, const qlinear_device *dev, const qlinear_quantized_linear *l,
                             const float *x, size_t rows, const float *bias, size_t bias_len) {
    layout L;
    qlinear_quantized_linear *l2 = NULL;
    size_t cl = 0, sl = 0;
    float *y1, *y2;
    layout_get(l, &L);
    EXPECT(qlinear_quantized_layout_lengths(L.n, L.k, L.bits, L.granularity, L.group_size, &cl, &sl),
           QLINEAR_OK);
    CHECK(cl == L.codes_len && sl == L.scales_len, "%s: layout_lengths agrees with layout (%zu, %zu)", name, cl,
          sl);
    if (L.format == QLINEAR_FORMAT_CB4)
        EXPECT(qlinear_quantized_linear_from_codebook_parts(dev, L.n, L.k, L.granularity, L.group_size,
                                                            L.scale_dtype, L.codes, L.codes_len, L.scales,
                                                            L.scales_len, L.levels, 16, bias, bias_len, L.mode,
                                                            &l2),
               QLINEAR_OK);
    else
        EXPECT(qlinear_quantized_linear_from_parts(dev, L.n, L.k, L.bits, L.granularity, L.group_size,
                                                   L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len,
                                                   L.zeros, L.zeros_len, bias, bias_len, L.mode, &l2),
               QLINEAR_OK);
    y1 = malloc(rows * L.n * sizeof(float));
    y2 = malloc(rows * L.n * sizeof(float));
    REQUIRE(qlinear_quantized_linear_forward(l, x, rows, rows * L.k, y1, rows * L.n));
    REQUIRE(qlinear_quantized_linear_forward(l2, x, rows, rows * L.k, y2, rows * L.n));
    CHECK(same_bits(y1, y2, rows * L.n), "%s: layer rebuilt from parts gives bit-identical output", name);
    qlinear_quantized_linear_free(l2);
    free(y1);
    free(y2);
    layout_free(&L);
}

/* ---------------------------------------------------------------- host job system */

/* A tiny job system: each run() starts `threads` pthreads that pull task indices. */
typedef struct {
    size_t threads;
    size_t runs; /* run() calls, to prove the device used it */
    size_t tasks;
    pthread_mutex_t lock;
} jobs;

typedef struct {
    jobs *j;
    size_t n, next;
    qlinear_task_fn task;
    void *task_ctx;
} job_call;

static void *job_worker(void *arg) {
    job_call *c = arg;
    for (;;) {
        size_t i;
        pthread_mutex_lock(&c->j->lock);
        i = c->next++;
        if (i < c->n) c->j->tasks++;
        pthread_mutex_unlock(&c->j->lock);
        if (i >= c->n) break;
        c->task(c->task_ctx, i);
    }
    return NULL;
}

static void job_run(void *ctx, size_t n_tasks, qlinear_task_fn task, void *task_ctx) {
    jobs *j = ctx;
    job_call c;
    pthread_t t[8];
    size_t i, nt = j->threads < 8 ? j->threads : 8;
    c.j = j;
    c.n = n_tasks;
    c.next = 0;
    c.task = task;
    c.task_ctx = task_ctx;
    pthread_mutex_lock(&j->lock);
    j->runs++;
    pthread_mutex_unlock(&j->lock);
    for (i = 0; i < nt; i++) pthread_create(&t[i], NULL, job_worker, &c);
    for (i = 0; i < nt; i++) pthread_join(t[i], NULL);
}

/* Breaks the contract: returns without running anything. */
static void job_run_broken(void *ctx, size_t n_tasks, qlinear_task_fn task, void *task_ctx) {
    (void)ctx;
    (void)n_tasks;
    (void)task;
    (void)task_ctx;
}

/* ---------------------------------------------------------------- host allocator */

typedef struct {
    pthread_mutex_t lock;
    long live, total;
    size_t bytes;
    int fail; /* return NULL from alloc */
} counting_alloc;

static void *ca_alloc(void *ctx, size_t size, size_t align) {
    counting_alloc *a = ctx;
    void *p;
    if (a->fail) return NULL;
    p = aligned_block(align < sizeof(void *) ? sizeof(void *) : align, size);
    if (p == NULL) return NULL;
    pthread_mutex_lock(&a->lock);
    a->live++;
    a->total++;
    a->bytes += size;
    pthread_mutex_unlock(&a->lock);
    return p;
}
static void ca_free(void *ctx, void *ptr, size_t size, size_t align) {
    counting_alloc *a = ctx;
    (void)align;
    pthread_mutex_lock(&a->lock);
    a->live--;
    a->bytes -= size;
    pthread_mutex_unlock(&a->lock);
    aligned_block_free(ptr);
}

/* ---------------------------------------------------------------- concurrent forward */

typedef struct {
    const qlinear_quantized_linear *l;
    const float *x;
    size_t rows, in, out;
    const float *expect;
    int mismatches;
    int errors;
} thread_arg;

static void *forward_thread(void *p) {
    thread_arg *a = p;
    float *y = malloc(a->rows * a->out * sizeof(float));
    int it;
    for (it = 0; it < 20; it++) {
        if (qlinear_quantized_linear_forward(a->l, a->x, a->rows, a->rows * a->in, y, a->rows * a->out) !=
            QLINEAR_OK)
            a->errors++;
        else if (!same_bits(y, a->expect, a->rows * a->out))
            a->mismatches++;
    }
    free(y);
    return NULL;
}

/* ================================================================ tests */

static void test_version_and_errors(void) {
    char buf[64];
    const char *v = qlinear_version();
    snprintf(buf, sizeof buf, "%d.%d.%d", QLINEAR_VERSION_MAJOR, QLINEAR_VERSION_MINOR, QLINEAR_VERSION_PATCH);
    CHECK(v != NULL && strcmp(v, buf) == 0, "qlinear_version() = \"%s\" matches header macros %s", v, buf);
    CHECK(strcmp(v, QLINEAR_VERSION_STRING) == 0, "QLINEAR_VERSION_STRING matches");
    CHECK(QLINEAR_OK == 0, "QLINEAR_OK is 0");
    CHECK(qlinear_last_error_message() != NULL, "last error message is never NULL");
    EXPECT(qlinear_device_create(1, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    CHECK(strstr(qlinear_last_error_message(), "qlinear_device_create") != NULL,
          "last error names the function: \"%s\"", qlinear_last_error_message());
    {
        qlinear_device *d = NULL;
        const char *before = qlinear_last_error_message();
        char copy[256];
        snprintf(copy, sizeof copy, "%s", before);
        REQUIRE(qlinear_device_create(1, &d));
        CHECK(strcmp(qlinear_last_error_message(), copy) == 0, "a successful call leaves the last error alone");
        qlinear_device_free(d);
    }
}

static void test_devices(void) {
    qlinear_device *d = NULL;
    size_t threads = 0;
    const char *isa = NULL;
    bool avail = false;
    const char *names[5] = {"avx2", "avx512", "neon", "neon-dotprod", "neon-i8mm"};
    int i, unsupported_seen = 0;

    EXPECT(qlinear_device_create(1, &d), QLINEAR_OK);
    EXPECT(qlinear_device_threads(d, &threads), QLINEAR_OK);
    CHECK(threads == 1, "device(1) runs inline: threads = %zu", threads);
    EXPECT(qlinear_device_isa(d, &isa), QLINEAR_OK);
    CHECK(isa != NULL && (!strcmp(isa, "scalar") || !strcmp(isa, "avx2") || !strcmp(isa, "avx512") ||
                          !strcmp(isa, "neon") || !strcmp(isa, "neon-dotprod") ||
                          !strcmp(isa, "neon-i8mm")),
          "device ISA is %s", isa ? isa : "(null)");
    printf("device isa: %s\n", isa ? isa : "(null)");
    EXPECT(qlinear_device_threads(NULL, &threads), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_device_threads(d, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_device_isa(NULL, &isa), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_device_isa(d, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    qlinear_device_free(d);

    d = NULL;
    EXPECT(qlinear_device_create(0, &d), QLINEAR_OK);
    EXPECT(qlinear_device_threads(d, &threads), QLINEAR_OK);
    CHECK(threads >= 1, "device(0) uses every core: threads = %zu", threads);
    qlinear_device_free(d);

    d = NULL;
    EXPECT(qlinear_device_create(3, &d), QLINEAR_OK);
    EXPECT(qlinear_device_threads(d, &threads), QLINEAR_OK);
    CHECK(threads == 3, "device(3): threads = %zu", threads);
    qlinear_device_free(d);

    d = NULL;
    EXPECT(qlinear_device_create_with_isa(1, "scalar", &d), QLINEAR_OK);
    EXPECT(qlinear_device_isa(d, &isa), QLINEAR_OK);
    CHECK(strcmp(isa, "scalar") == 0, "forced scalar ISA reported as %s", isa);
    qlinear_device_free(d);
    d = NULL;
    EXPECT(qlinear_device_create_with_isa(1, "auto", &d), QLINEAR_OK);
    qlinear_device_free(d);
    d = NULL;
    EXPECT(qlinear_device_create_with_isa(1, "sse9", &d), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_device_create_with_isa(1, NULL, &d), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_device_create_with_isa(1, "scalar", NULL), QLINEAR_ERR_NULL_ARGUMENT);
    CHECK(d == NULL, "failed create leaves *out untouched");

    EXPECT(qlinear_isa_is_available("scalar", &avail), QLINEAR_OK);
    CHECK(avail, "scalar is always available");
    EXPECT(qlinear_isa_is_available("sse9", &avail), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_isa_is_available(NULL, &avail), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_isa_is_available("scalar", NULL), QLINEAR_ERR_NULL_ARGUMENT);
    for (i = 0; i < 5; i++) {
        REQUIRE(qlinear_isa_is_available(names[i], &avail));
        d = NULL;
        if (avail) {
            EXPECT(qlinear_device_create_with_isa(1, names[i], &d), QLINEAR_OK);
            EXPECT(qlinear_device_isa(d, &isa), QLINEAR_OK);
            CHECK(strcmp(isa, names[i]) == 0, "forced %s reported as %s", names[i], isa);
            qlinear_device_free(d);
        } else {
            EXPECT(qlinear_device_create_with_isa(1, names[i], &d), QLINEAR_ERR_UNSUPPORTED);
            unsupported_seen = 1;
        }
    }
    if (!unsupported_seen) printf("note: every ISA is available here; the UNSUPPORTED path was not hit\n");

    {
        jobs j;
        counting_alloc a;
        memset(&j, 0, sizeof j);
        memset(&a, 0, sizeof a);
        EXPECT(qlinear_device_create_custom(0, NULL, job_run, &j, NULL, NULL, NULL, &d),
               QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(qlinear_device_create_custom(1, NULL, NULL, NULL, ca_alloc, NULL, &a, &d), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_device_create_custom(1, NULL, NULL, NULL, NULL, ca_free, &a, &d), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_device_create_custom(1, "sse9", NULL, NULL, NULL, NULL, NULL, &d),
               QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(qlinear_device_create_custom(1, NULL, NULL, NULL, NULL, NULL, NULL, NULL), QLINEAR_ERR_NULL_ARGUMENT);
        d = NULL;
        EXPECT(qlinear_device_create_custom(2, "scalar", NULL, NULL, NULL, NULL, NULL, &d), QLINEAR_OK);
        EXPECT(qlinear_device_threads(d, &threads), QLINEAR_OK);
        CHECK(threads == 2, "custom device with 2 owned threads: %zu", threads);
        qlinear_device_free(d);
    }
    qlinear_device_free(NULL);
    CHECK(1, "qlinear_device_free(NULL) is a no-op");
}

static void test_configs(void) {
    qlinear_quant_config *c = NULL;
    EXPECT(qlinear_quant_config_create_int8(NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quant_config_create_int4(NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quant_config_create_int4_uniform(NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quant_config_create_int4(&c), QLINEAR_OK);
    /* The cb4 default has no zero points; the config stays as it was on failure. */
    EXPECT(qlinear_quant_config_set_symmetric(c, false), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quant_config_set_format(c, 3), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quant_config_set_format(c, QLINEAR_FORMAT_INT4), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_symmetric(c, false), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_format(c, QLINEAR_FORMAT_CB4), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quant_config_set_format(NULL, QLINEAR_FORMAT_INT8), QLINEAR_ERR_NULL_ARGUMENT);
    qlinear_quant_config_free(c);
    c = NULL;
    EXPECT(qlinear_quant_config_create_int4_uniform(&c), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_symmetric(c, false), QLINEAR_OK);
    qlinear_quant_config_free(c);
    c = NULL;
    EXPECT(qlinear_quant_config_create_int8(&c), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_bits(c, 5), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quant_config_set_bits(c, 256 + 8), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quant_config_set_bits(c, 4), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_bits(c, 8), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_group_size(c, 48), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quant_config_set_group_size(c, 16), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quant_config_set_group_size(c, 2048), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quant_config_set_group_size(c, 64), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_group_size(c, 0), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_granularity(c, 9, 0), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quant_config_set_granularity(c, QLINEAR_GRANULARITY_GROUP, 33), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quant_config_set_granularity(c, QLINEAR_GRANULARITY_PER_TENSOR, 0), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_symmetric(c, false), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_activation_mode(c, 7), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quant_config_set_activation_mode(c, QLINEAR_ACTIVATION_DYN8_PER_ROW), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_activation_mode(c, QLINEAR_ACTIVATION_DYN8), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_scale_dtype(c, 7), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quant_config_set_scale_dtype(c, QLINEAR_SCALE_F32), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_search(c, false), QLINEAR_OK);
    EXPECT(qlinear_quant_config_set_bits(NULL, 8), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quant_config_set_group_size(NULL, 32), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quant_config_set_granularity(NULL, 1, 0), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quant_config_set_symmetric(NULL, true), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quant_config_set_activation_mode(NULL, 0), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quant_config_set_scale_dtype(NULL, 0), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quant_config_set_search(NULL, true), QLINEAR_ERR_NULL_ARGUMENT);
    qlinear_quant_config_free(c);
    qlinear_quant_config_free(NULL);
    CHECK(1, "qlinear_quant_config_free(NULL) is a no-op");
}

/* f32 Linear: creation errors, forward vs reference, forward errors, f16/bf16 weights. */
static void test_linear(const qlinear_device *dev) {
    enum { N = 48, K = 64, R = 3 };
    float *w = rand_vec(N * K, 0.2f), *b = rand_vec(N, 0.1f), *x = rand_vec(R * K, 1.0f);
    float y[R * N], y2[R * N], sentinel[R * N];
    uint16_t w16[N * K], b16[N], wb[N * K], bb[N];
    float w16f[N * K], b16f[N], wbf[N * K], bbf[N];
    qlinear_linear *l = NULL, *l2 = NULL;
    size_t r, j, c, bad = 0, o = 0, in = 0;

    EXPECT(qlinear_linear_create(dev, w, N * K, N, K, b, N, &l), QLINEAR_OK);
    EXPECT(qlinear_linear_shape(l, &o, &in), QLINEAR_OK);
    CHECK(o == N && in == K, "linear shape %zu x %zu", o, in);
    EXPECT(qlinear_linear_shape(NULL, &o, &in), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_linear_shape(l, NULL, &in), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_linear_shape(l, &o, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_linear_forward(l, x, R, R * K, y, R * N), QLINEAR_OK);
    for (r = 0; r < R; r++)
        for (j = 0; j < N; j++) {
            double ref = b[j], mag = fabs(b[j]);
            for (c = 0; c < K; c++) {
                ref += (double)x[r * K + c] * w[j * K + c];
                mag += fabs((double)x[r * K + c] * w[j * K + c]);
            }
            if (fabs(y[r * N + j] - ref) > 1e-5 * mag + 1e-6) bad++;
        }
    CHECK(bad == 0, "linear forward matches C reference");

    /* creation errors */
    l2 = NULL;
    EXPECT(qlinear_linear_create(NULL, w, N * K, N, K, b, N, &l2), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_linear_create(dev, NULL, N * K, N, K, b, N, &l2), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_linear_create(dev, w, N * K, N, K, b, N, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_linear_create(dev, w, 0, N, K, b, N, &l2), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_linear_create(dev, w, N * K - 1, N, K, b, N, &l2), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_linear_create(dev, w, N * K, 0, K, b, N, &l2), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_linear_create(dev, w, N * K, SIZE_MAX, 2, b, N, &l2), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_linear_create(dev, w, N * K, N, K, b, N - 1, &l2), QLINEAR_ERR_INVALID_ARGUMENT);
    w[5] = NAN;
    EXPECT(qlinear_linear_create(dev, w, N * K, N, K, b, N, &l2), QLINEAR_ERR_INVALID_ARGUMENT);
    w[5] = 0.1f;
    b[2] = INFINITY;
    EXPECT(qlinear_linear_create(dev, w, N * K, N, K, b, N, &l2), QLINEAR_ERR_INVALID_ARGUMENT);
    b[2] = 0.05f;
    CHECK(l2 == NULL, "failed creates leave *out untouched");
    EXPECT(qlinear_linear_create(dev, w, N * K, N, K, NULL, 0, &l2), QLINEAR_OK);
    qlinear_linear_free(l2);

    /* forward errors leave y untouched */
    for (j = 0; j < R * N; j++) sentinel[j] = y2[j] = -12345.0f;
    EXPECT(qlinear_linear_forward(NULL, x, R, R * K, y2, R * N), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_linear_forward(l, NULL, R, R * K, y2, R * N), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_linear_forward(l, x, R, R * K, NULL, R * N), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_linear_forward(l, x, 0, 0, y2, 0), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_linear_forward(l, x, R, R * K - 1, y2, R * N), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_linear_forward(l, x, R, R * K, y2, R * N + 1), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_linear_forward(l, x, SIZE_MAX, R * K, y2, R * N), QLINEAR_ERR_INVALID_ARGUMENT);
    CHECK(same_bits(y2, sentinel, R * N), "linear: y untouched by failed forwards");

    /* f16 / bf16 weights: same values as f32 weights give bit-identical outputs */
    for (j = 0; j < N * K; j++) {
        w16[j] = rand_f16();
        w16f[j] = f16_to_float(w16[j]) * 0.125f;
        w16[j] = (uint16_t)(w16[j] - (3u << 10)); /* scale by 1/8 in the exponent */
        wb[j] = rand_bf16();
        wbf[j] = bf16_to_float(wb[j]);
    }
    for (j = 0; j < N; j++) {
        b16[j] = rand_f16();
        b16f[j] = f16_to_float(b16[j]);
        bb[j] = rand_bf16();
        bbf[j] = bf16_to_float(bb[j]);
    }
    {
        qlinear_linear *lh = NULL, *lf = NULL;
        float ya[R * N], yb[R * N];
        EXPECT(qlinear_linear_create_f16(dev, w16, N * K, N, K, b16, N, &lh), QLINEAR_OK);
        EXPECT(qlinear_linear_create(dev, w16f, N * K, N, K, b16f, N, &lf), QLINEAR_OK);
        REQUIRE(qlinear_linear_forward(lh, x, R, R * K, ya, R * N));
        REQUIRE(qlinear_linear_forward(lf, x, R, R * K, yb, R * N));
        CHECK(same_bits(ya, yb, R * N), "f16-weight linear equals f32 linear with the same values");
        qlinear_linear_free(lh);
        qlinear_linear_free(lf);
        lh = lf = NULL;
        EXPECT(qlinear_linear_create_bf16(dev, wb, N * K, N, K, bb, N, &lh), QLINEAR_OK);
        EXPECT(qlinear_linear_create(dev, wbf, N * K, N, K, bbf, N, &lf), QLINEAR_OK);
        REQUIRE(qlinear_linear_forward(lh, x, R, R * K, ya, R * N));
        REQUIRE(qlinear_linear_forward(lf, x, R, R * K, yb, R * N));
        CHECK(same_bits(ya, yb, R * N), "bf16-weight linear equals f32 linear with the same values");
        qlinear_linear_free(lh);
        qlinear_linear_free(lf);
        lh = NULL;
        EXPECT(qlinear_linear_create_f16(dev, w16, N * K - 1, N, K, NULL, 0, &lh), QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(qlinear_linear_create_f16(NULL, w16, N * K, N, K, NULL, 0, &lh), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_linear_create_bf16(dev, NULL, N * K, N, K, NULL, 0, &lh), QLINEAR_ERR_NULL_ARGUMENT);
        wb[7] = 0x7FC0; /* bf16 NaN */
        EXPECT(qlinear_linear_create_bf16(dev, wb, N * K, N, K, NULL, 0, &lh), QLINEAR_ERR_INVALID_ARGUMENT);
        w16[7] = 0x7C00; /* f16 +Inf */
        EXPECT(qlinear_linear_create_f16(dev, w16, N * K, N, K, NULL, 0, &lh), QLINEAR_ERR_INVALID_ARGUMENT);
    }
    qlinear_linear_free(l);
    qlinear_linear_free(NULL);
    CHECK(1, "qlinear_linear_free(NULL) is a no-op");
    free(w);
    free(b);
    free(x);
}

/* One quantization recipe applied to raw weights, checked against the reference. */
typedef struct {
    const char *name;
    uint32_t format;
    uint32_t granularity;
    size_t group;
    int symmetric;
    uint32_t scale_dtype;
    uint32_t mode;
    int search;
} recipe;

static qlinear_quant_config *make_config(const recipe *rc) {
    qlinear_quant_config *c = NULL;
    REQUIRE(qlinear_quant_config_create_int8(&c));
    REQUIRE(qlinear_quant_config_set_format(c, rc->format));
    REQUIRE(qlinear_quant_config_set_granularity(c, rc->granularity, rc->group));
    REQUIRE(qlinear_quant_config_set_symmetric(c, rc->symmetric != 0));
    REQUIRE(qlinear_quant_config_set_scale_dtype(c, rc->scale_dtype));
    REQUIRE(qlinear_quant_config_set_activation_mode(c, rc->mode));
    REQUIRE(qlinear_quant_config_set_search(c, rc->search != 0));
    return c;
}

static void test_recipes(const qlinear_device *dev) {
    static const recipe recipes[] = {
        {"int8 g32 sym f16", QLINEAR_FORMAT_INT8, QLINEAR_GRANULARITY_GROUP, 32, 1, QLINEAR_SCALE_F16,
         QLINEAR_ACTIVATION_EXACT, 1},
        {"int4 g32 sym f16", QLINEAR_FORMAT_INT4, QLINEAR_GRANULARITY_GROUP, 32, 1, QLINEAR_SCALE_F16,
         QLINEAR_ACTIVATION_EXACT, 1},
        {"int4 g32 asym f32", QLINEAR_FORMAT_INT4, QLINEAR_GRANULARITY_GROUP, 32, 0, QLINEAR_SCALE_F32,
         QLINEAR_ACTIVATION_EXACT, 1},
        {"int8 channel asym", QLINEAR_FORMAT_INT8, QLINEAR_GRANULARITY_PER_CHANNEL, 0, 0, QLINEAR_SCALE_F32,
         QLINEAR_ACTIVATION_EXACT, 0},
        {"int4 tensor sym", QLINEAR_FORMAT_INT4, QLINEAR_GRANULARITY_PER_TENSOR, 0, 1, QLINEAR_SCALE_F16,
         QLINEAR_ACTIVATION_EXACT, 0},
        {"int8 g64 sym dyn8", QLINEAR_FORMAT_INT8, QLINEAR_GRANULARITY_GROUP, 64, 1, QLINEAR_SCALE_F16,
         QLINEAR_ACTIVATION_DYN8, 1},
        {"int4 g32 asym dyn8", QLINEAR_FORMAT_INT4, QLINEAR_GRANULARITY_GROUP, 32, 0, QLINEAR_SCALE_F16,
         QLINEAR_ACTIVATION_DYN8, 1},
        {"cb4 g32 f16", QLINEAR_FORMAT_CB4, QLINEAR_GRANULARITY_GROUP, 32, 1, QLINEAR_SCALE_F16,
         QLINEAR_ACTIVATION_EXACT, 1},
        {"cb4 g64 f32 dyn8", QLINEAR_FORMAT_CB4, QLINEAR_GRANULARITY_GROUP, 64, 1, QLINEAR_SCALE_F32,
         QLINEAR_ACTIVATION_DYN8, 1},
        {"int8 channel dyn8 per row", QLINEAR_FORMAT_INT8, QLINEAR_GRANULARITY_PER_CHANNEL, 0, 1,
         QLINEAR_SCALE_F16, QLINEAR_ACTIVATION_DYN8_PER_ROW, 0},
    };
    static const size_t shapes[2][2] = {{48, 64}, {17, 33}}; /* {out, in} */
    size_t ri, si;
    for (ri = 0; ri < sizeof recipes / sizeof recipes[0]; ri++) {
        for (si = 0; si < 2; si++) {
            const recipe *rc = &recipes[ri];
            size_t n = shapes[si][0], k = shapes[si][1], rows = 3, gs = 0, bytes = 0, saved = 0;
            float *w = rand_vec(n * k, 0.3f), *b = rand_vec(n, 0.1f), *x = rand_vec(rows * k, 1.0f);
            float *y = malloc(rows * n * sizeof(float));
            qlinear_quant_config *c = make_config(rc);
            qlinear_quantized_linear *q = NULL;
            uint32_t bits = 0, gran = 0, sd = 0, mode = 0, fmt = 0;
            bool sym = false;
            char name[96];
            snprintf(name, sizeof name, "%s [%zux%zu]", rc->name, n, k);
            /* a group larger than the row is still valid: one (shorter) group per row */
            EXPECT(qlinear_quantized_linear_quantize(dev, w, n * k, n, k, b, n, c, &q), QLINEAR_OK);
            if (!q) continue;
            EXPECT(qlinear_quantized_linear_bits(q, &bits), QLINEAR_OK);
            EXPECT(qlinear_quantized_linear_granularity(q, &gran), QLINEAR_OK);
            EXPECT(qlinear_quantized_linear_group_size(q, &gs), QLINEAR_OK);
            EXPECT(qlinear_quantized_linear_symmetric(q, &sym), QLINEAR_OK);
            EXPECT(qlinear_quantized_linear_scale_dtype(q, &sd), QLINEAR_OK);
            EXPECT(qlinear_quantized_linear_activation_mode(q, &mode), QLINEAR_OK);
            EXPECT(qlinear_quantized_linear_format(q, &fmt), QLINEAR_OK);
            CHECK(bits == (rc->format == QLINEAR_FORMAT_INT8 ? 8u : 4u) && fmt == rc->format &&
                      gran == rc->granularity && gs == rc->group &&
                      sym == (rc->symmetric != 0) && sd == rc->scale_dtype && mode == rc->mode,
                  "%s: queries report the recipe", name);
            EXPECT(qlinear_quantized_linear_weight_bytes(q, &bytes), QLINEAR_OK);
            EXPECT(qlinear_quantized_linear_memory_savings_bytes(q, &saved), QLINEAR_OK);
            CHECK(bytes > 0 && saved == (4 * n * k > bytes ? 4 * n * k - bytes : 0),
                  "%s: weight_bytes %zu, memory saved %zu", name, bytes, saved);
            EXPECT(qlinear_quantized_linear_forward(q, x, rows, rows * k, y, rows * n), QLINEAR_OK);
            check_vs_reference(name, q, x, rows, b, y);
            check_from_parts(name, dev, q, x, rows, b, n);
            qlinear_quantized_linear_free(q);
            qlinear_quant_config_free(c);
            free(w);
            free(b);
            free(x);
            free(y);
        }
    }
}

/* Quantized layer from a Linear; every error path of the quantized functions. */
static void test_quantized_errors(const qlinear_device *dev) {
    enum { N = 17, K = 33, R = 2 };
    float *w = rand_vec(N * K, 0.3f), *b = rand_vec(N, 0.1f), *x = rand_vec(R * K, 1.0f);
    float y[R * N], sentinel[R * N], yq[R * N];
    qlinear_linear *lin = NULL;
    qlinear_quant_config *c8 = NULL, *c4 = NULL;
    qlinear_quantized_linear *q = NULL, *qa = NULL, *bad = NULL;
    size_t v = 0, cl = 0, sl = 0, zl = 0, j;
    uint32_t u = 0;
    bool flag = false;
    layout L;

    REQUIRE(qlinear_linear_create(dev, w, N * K, N, K, b, N, &lin));
    REQUIRE(qlinear_quant_config_create_int8(&c8));
    REQUIRE(qlinear_quant_config_create_int4(&c4));
    EXPECT(qlinear_quantized_linear_from_linear(lin, c8, &q), QLINEAR_OK);
    EXPECT(qlinear_quantized_linear_from_linear(NULL, c8, &bad), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_from_linear(lin, NULL, &bad), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_from_linear(lin, c8, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    REQUIRE(qlinear_quantized_linear_forward(q, x, R, R * K, yq, R * N));
    check_vs_reference("from_linear int8 default", q, x, R, b, yq);

    /* quantize errors */
    EXPECT(qlinear_quantized_linear_quantize(NULL, w, N * K, N, K, b, N, c4, &bad), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_quantize(dev, NULL, N * K, N, K, b, N, c4, &bad), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_quantize(dev, w, N * K, N, K, b, N, NULL, &bad), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_quantize(dev, w, N * K, N, K, b, N, c4, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_quantize(dev, w, 0, N, K, b, N, c4, &bad), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_linear_quantize(dev, w, N * K, N, K + 1, b, N, c4, &bad), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_linear_quantize(dev, w, N * K, 0, K, b, N, c4, &bad), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_linear_quantize(dev, w, N * K, SIZE_MAX, SIZE_MAX, b, N, c4, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_linear_quantize(dev, w, N * K, N, K, b, N + 1, c4, &bad), QLINEAR_ERR_INVALID_ARGUMENT);
    w[3] = NAN;
    EXPECT(qlinear_quantized_linear_quantize(dev, w, N * K, N, K, b, N, c4, &bad), QLINEAR_ERR_INVALID_ARGUMENT);
    w[3] = -INFINITY;
    EXPECT(qlinear_quantized_linear_quantize(dev, w, N * K, N, K, b, N, c4, &bad), QLINEAR_ERR_INVALID_ARGUMENT);
    w[3] = 0.2f;
    b[1] = NAN;
    EXPECT(qlinear_quantized_linear_quantize(dev, w, N * K, N, K, b, N, c4, &bad), QLINEAR_ERR_INVALID_ARGUMENT);
    b[1] = 0.01f;
    CHECK(bad == NULL, "failed quantize leaves *out untouched");

    /* forward errors leave y untouched */
    for (j = 0; j < R * N; j++) sentinel[j] = y[j] = 777.0f;
    EXPECT(qlinear_quantized_linear_forward(NULL, x, R, R * K, y, R * N), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_forward(q, NULL, R, R * K, y, R * N), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_forward(q, x, R, R * K, NULL, R * N), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_forward(q, x, 0, R * K, y, R * N), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_linear_forward(q, x, R, 0, y, R * N), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_linear_forward(q, x, R, R * K + 1, y, R * N), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_linear_forward(q, x, R, R * K, y, R * N - 1), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_linear_forward(q, x, SIZE_MAX, R * K, y, R * N), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_linear_forward(q, x, SIZE_MAX / 2, R * K, y, R * N), QLINEAR_ERR_INVALID_ARGUMENT);
    CHECK(same_bits(y, sentinel, R * N), "quantized: y untouched by failed forwards");

    /* dyn8 rejects non-finite activations before writing y */
    {
        qlinear_quant_config *cd = NULL;
        qlinear_quantized_linear *qd = NULL;
        REQUIRE(qlinear_quant_config_create_int8(&cd));
        REQUIRE(qlinear_quant_config_set_activation_mode(cd, QLINEAR_ACTIVATION_DYN8));
        REQUIRE(qlinear_quantized_linear_from_linear(lin, cd, &qd));
        x[4] = NAN;
        EXPECT(qlinear_quantized_linear_forward(qd, x, R, R * K, y, R * N), QLINEAR_ERR_INVALID_ARGUMENT);
        x[4] = 0.5f;
        CHECK(same_bits(y, sentinel, R * N), "dyn8: y untouched when x has NaN");
        qlinear_quantized_linear_free(qd);
        qlinear_quant_config_free(cd);
    }

    /* queries: NULL layer and NULL out */
    EXPECT(qlinear_quantized_linear_in_features(q, &v), QLINEAR_OK);
    CHECK(v == K, "in_features = %zu", v);
    EXPECT(qlinear_quantized_linear_out_features(q, &v), QLINEAR_OK);
    CHECK(v == N, "out_features = %zu", v);
    EXPECT(qlinear_quantized_linear_in_features(NULL, &v), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_in_features(q, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_out_features(NULL, &v), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_out_features(q, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_bits(NULL, &u), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_bits(q, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_granularity(NULL, &u), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_granularity(q, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_group_size(NULL, &v), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_group_size(q, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_symmetric(NULL, &flag), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_symmetric(q, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_scale_dtype(NULL, &u), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_scale_dtype(q, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_activation_mode(NULL, &u), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_activation_mode(q, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_weight_bytes(NULL, &v), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_weight_bytes(q, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_memory_savings_bytes(NULL, &v), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_memory_savings_bytes(q, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_layout(NULL, &cl, &sl, &zl), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_layout(q, NULL, &sl, &zl), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_layout(q, &cl, NULL, &zl), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_linear_layout(q, &cl, &sl, NULL), QLINEAR_ERR_NULL_ARGUMENT);

    /* copy-out: too small, NULL, symmetric zero points */
    {
        uint8_t codes[N * K + 8];
        float scales[N * 2 + 8];
        int8_t zeros[N * 2 + 8];
        REQUIRE(qlinear_quantized_linear_layout(q, &cl, &sl, &zl));
        CHECK(cl == N * K && sl == N * 2 && zl == 0, "int8 g32 [17x33] layout: %zu codes, %zu scales, %zu zeros",
              cl, sl, zl);
        memset(codes, 0xAB, sizeof codes);
        EXPECT(qlinear_quantized_linear_copy_codes(q, codes, cl - 1), QLINEAR_ERR_INVALID_ARGUMENT);
        CHECK(codes[0] == 0xAB && codes[cl - 2] == 0xAB, "codes buffer untouched when too small");
        EXPECT(qlinear_quantized_linear_copy_codes(q, codes, 0), QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(qlinear_quantized_linear_copy_codes(q, NULL, cl), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_copy_codes(NULL, codes, cl), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_copy_codes(q, codes, sizeof codes), QLINEAR_OK);
        CHECK(codes[cl] == 0xAB, "copy_codes writes only codes_len bytes into a larger buffer");
        EXPECT(qlinear_quantized_linear_copy_scales(q, scales, sl - 1), QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(qlinear_quantized_linear_copy_scales(q, NULL, sl), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_copy_scales(NULL, scales, sl), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_copy_scales(q, scales, sl), QLINEAR_OK);
        EXPECT(qlinear_quantized_linear_copy_zero_points(q, NULL, 0), QLINEAR_OK);
        EXPECT(qlinear_quantized_linear_copy_zero_points(NULL, zeros, 1), QLINEAR_ERR_NULL_ARGUMENT);
    }
    {
        qlinear_quant_config *ca = NULL;
        int8_t zeros[64];
        REQUIRE(qlinear_quant_config_create_int4_uniform(&ca));
        REQUIRE(qlinear_quant_config_set_symmetric(ca, false));
        REQUIRE(qlinear_quantized_linear_quantize(dev, w, N * K, N, K, NULL, 0, ca, &qa));
        REQUIRE(qlinear_quantized_linear_layout(qa, &cl, &sl, &zl));
        CHECK(cl == N * ((K + 1) / 2) && zl == sl && zl > 0, "int4 asym layout: %zu codes, %zu zero points", cl, zl);
        EXPECT(qlinear_quantized_linear_copy_zero_points(qa, zeros, zl - 1), QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(qlinear_quantized_linear_copy_zero_points(qa, NULL, zl), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_copy_zero_points(qa, zeros, zl), QLINEAR_OK);
        qlinear_quant_config_free(ca);
    }
    /* the codebook: format query, copy-out, and building from codebook parts */
    {
        qlinear_quant_config *cb = NULL;
        qlinear_quantized_linear *qc = NULL, *bad = NULL;
        int8_t levels[17], wrong[16];
        uint8_t codes[N * ((K + 1) / 2)];
        float scales[N * 2];
        uint32_t fmt = 99;
        size_t i;
        REQUIRE(qlinear_quant_config_create_int4(&cb));
        REQUIRE(qlinear_quantized_linear_quantize(dev, w, N * K, N, K, NULL, 0, cb, &qc));
        EXPECT(qlinear_quantized_linear_format(qc, &fmt), QLINEAR_OK);
        CHECK(fmt == QLINEAR_FORMAT_CB4, "qlinear_quant_config_create_int4 makes a cb4 layer");
        EXPECT(qlinear_quantized_linear_format(qc, NULL), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_format(NULL, &fmt), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_format(q, &fmt), QLINEAR_OK);
        CHECK(fmt == QLINEAR_FORMAT_INT8, "an int8 layer reports QLINEAR_FORMAT_INT8");
        memset(levels, 0x55, sizeof levels);
        EXPECT(qlinear_quantized_linear_copy_codebook(qc, levels, 15), QLINEAR_ERR_INVALID_ARGUMENT);
        CHECK(levels[0] == 0x55, "codebook buffer untouched when too small");
        EXPECT(qlinear_quantized_linear_copy_codebook(qc, NULL, 16), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_copy_codebook(NULL, levels, 16), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_copy_codebook(q, levels, 16), QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(qlinear_quantized_linear_copy_codebook(qc, levels, 17), QLINEAR_OK);
        CHECK(levels[16] == 0x55, "copy_codebook writes 16 levels");
        for (i = 1; i < 16; i++) CHECK(levels[i] > levels[i - 1], "level %zu ascends", i);
        REQUIRE(qlinear_quantized_linear_copy_codes(qc, codes, sizeof codes));
        REQUIRE(qlinear_quantized_linear_copy_scales(qc, scales, N * 2));
        memcpy(wrong, levels, 16);
        wrong[3] = wrong[4]; /* not strictly ascending */
#define FROM_CB(levels_, len_, out_)                                                                        \
    qlinear_quantized_linear_from_codebook_parts(dev, N, K, QLINEAR_GRANULARITY_GROUP, 32, QLINEAR_SCALE_F16, \
                                                 codes, sizeof codes, scales, N * 2, levels_, len_, NULL, 0,  \
                                                 QLINEAR_ACTIVATION_DYN8, out_)
        EXPECT(FROM_CB(NULL, 16, &bad), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(FROM_CB(levels, 15, &bad), QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(FROM_CB(levels, 0, &bad), QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(FROM_CB(wrong, 16, &bad), QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(FROM_CB(levels, 16, NULL), QLINEAR_ERR_NULL_ARGUMENT);
        CHECK(bad == NULL, "failed from_codebook_parts leaves *out untouched");
        EXPECT(FROM_CB(levels, 16, &bad), QLINEAR_OK);
#undef FROM_CB
        qlinear_quantized_linear_free(bad);
        qlinear_quantized_linear_free(qc);
        qlinear_quant_config_free(cb);
    }

    /* layout_lengths errors */
    EXPECT(qlinear_quantized_layout_lengths(N, K, 3, QLINEAR_GRANULARITY_GROUP, 32, &cl, &sl),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_layout_lengths(N, K, 4, QLINEAR_GRANULARITY_GROUP, 48, &cl, &sl),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_layout_lengths(0, K, 4, QLINEAR_GRANULARITY_GROUP, 32, &cl, &sl),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_layout_lengths(SIZE_MAX, SIZE_MAX, 8, QLINEAR_GRANULARITY_PER_CHANNEL, 0, &cl, &sl),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_quantized_layout_lengths(N, K, 4, QLINEAR_GRANULARITY_GROUP, 32, NULL, &sl),
           QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_quantized_layout_lengths(N, K, 4, QLINEAR_GRANULARITY_GROUP, 32, &cl, NULL),
           QLINEAR_ERR_NULL_ARGUMENT);

    /* from_parts errors, starting from valid int4 asym parts of qa */
    layout_get(qa, &L);
#define FROM_PARTS(dev_, bits_, gran_, gs_, sd_, codes_, cl_, scales_, sl_, zeros_, zl_, bias_, bl_, mode_, out_) \
    qlinear_quantized_linear_from_parts(dev_, N, K, bits_, gran_, gs_, sd_, codes_, cl_, scales_, sl_, zeros_, zl_,   \
                                        bias_, bl_, mode_, out_)
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len,
                      L.zeros, L.zeros_len, b, N, 0, &bad),
           QLINEAR_OK);
    qlinear_quantized_linear_free(bad);
    bad = NULL;
    EXPECT(FROM_PARTS(NULL, 4, L.granularity, 32, L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len,
                      L.zeros, L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, L.scale_dtype, NULL, L.codes_len, L.scales, L.scales_len, L.zeros,
                      L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, L.scale_dtype, L.codes, L.codes_len, NULL, L.scales_len, L.zeros,
                      L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len,
                      L.zeros, L.zeros_len, b, N, 0, NULL),
           QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 5, L.granularity, 32, L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len,
                      L.zeros, L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 48, L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len,
                      L.zeros, L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 4, 9, 32, L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len, L.zeros,
                      L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, 9, L.codes, L.codes_len, L.scales, L.scales_len, L.zeros,
                      L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len,
                      L.zeros, L.zeros_len, b, N, 9, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, L.scale_dtype, L.codes, L.codes_len - 1, L.scales, L.scales_len,
                      L.zeros, L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, L.scale_dtype, L.codes, 0, L.scales, L.scales_len, L.zeros,
                      L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len - 1,
                      L.zeros, L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len,
                      L.zeros, L.zeros_len - 1, b, N, 0, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len,
                      L.zeros, L.zeros_len, b, N - 1, 0, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    L.scales[1] = NAN;
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len,
                      L.zeros, L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    L.scales[1] = 0.1f + 1e-7f; /* not representable in f16 */
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, QLINEAR_SCALE_F16, L.codes, L.codes_len, L.scales, L.scales_len,
                      L.zeros, L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    L.scales[1] = 0.125f;
    L.codes[(K + 1) / 2 - 1] |= 0x10; /* odd K: the last high nibble of a row must be 0 */
    EXPECT(FROM_PARTS(dev, 4, L.granularity, 32, L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len,
                      L.zeros, L.zeros_len, b, N, 0, &bad),
           QLINEAR_ERR_INVALID_ARGUMENT);
    CHECK(bad == NULL, "failed from_parts leaves *out untouched");
#undef FROM_PARTS
    layout_free(&L);

    /* f16 / bf16 forward: inputs as bit patterns, compared with the f32 forward */
    {
        uint16_t xh[R * K], yh[R * N], yh2[R * N];
        float xf[R * K], yf[R * N];
        size_t bad16 = 0;
        for (j = 0; j < R * K; j++) {
            xh[j] = rand_f16();
            xf[j] = f16_to_float(xh[j]);
        }
        EXPECT(qlinear_quantized_linear_forward_f16(q, xh, R, R * K, yh, R * N), QLINEAR_OK);
        REQUIRE(qlinear_quantized_linear_forward(q, xf, R, R * K, yf, R * N));
        for (j = 0; j < R * N; j++)
            if (fabsf(f16_to_float(yh[j]) - yf[j]) > fabsf(yf[j]) * 0x1p-11f + 0x1p-24f) bad16++;
        CHECK(bad16 == 0, "f16 forward = f32 forward rounded to f16");
        for (j = 0; j < R * K; j++) {
            xh[j] = rand_bf16();
            xf[j] = bf16_to_float(xh[j]);
        }
        bad16 = 0;
        EXPECT(qlinear_quantized_linear_forward_bf16(q, xh, R, R * K, yh, R * N), QLINEAR_OK);
        REQUIRE(qlinear_quantized_linear_forward(q, xf, R, R * K, yf, R * N));
        for (j = 0; j < R * N; j++)
            if (fabsf(bf16_to_float(yh[j]) - yf[j]) > fabsf(yf[j]) * 0x1p-8f) bad16++;
        CHECK(bad16 == 0, "bf16 forward = f32 forward rounded to bf16");
        memcpy(yh2, yh, sizeof yh);
        EXPECT(qlinear_quantized_linear_forward_f16(NULL, xh, R, R * K, yh, R * N), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_forward_f16(q, NULL, R, R * K, yh, R * N), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_forward_f16(q, xh, R, R * K, NULL, R * N), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_forward_f16(q, xh, R, R * K - 1, yh, R * N), QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(qlinear_quantized_linear_forward_f16(q, xh, SIZE_MAX, R * K, yh, R * N), QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(qlinear_quantized_linear_forward_bf16(NULL, xh, R, R * K, yh, R * N), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_forward_bf16(q, xh, R, R * K, NULL, R * N), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_quantized_linear_forward_bf16(q, xh, 0, R * K, yh, R * N), QLINEAR_ERR_INVALID_ARGUMENT);
        EXPECT(qlinear_quantized_linear_forward_bf16(q, xh, R, R * K, yh, R * N + 1), QLINEAR_ERR_INVALID_ARGUMENT);
        CHECK(memcmp(yh, yh2, sizeof yh) == 0, "half forwards: y untouched on failure");
    }

    qlinear_quantized_linear_free(q);
    qlinear_quantized_linear_free(qa);
    qlinear_quantized_linear_free(NULL);
    CHECK(1, "qlinear_quantized_linear_free(NULL) is a no-op");
    qlinear_linear_free(lin);
    qlinear_quant_config_free(c8);
    qlinear_quant_config_free(c4);
    free(w);
    free(b);
    free(x);
}

/* Executors: inline, owned pool, host job system and 4 caller threads agree bit for bit. */
static void test_executors(void) {
    enum { N = 64, K = 128, R = 1024 }; /* 8M multiply-adds: split into several tasks */
    float *w = rand_vec(N * K, 0.3f), *b = rand_vec(N, 0.1f), *x = rand_vec(R * K, 1.0f);
    float *y1 = malloc(R * N * sizeof(float)), *y2 = malloc(R * N * sizeof(float)),
          *y3 = malloc(R * N * sizeof(float));
    qlinear_device *inl = NULL, *pool = NULL, *host = NULL, *broken = NULL;
    qlinear_quant_config *c = NULL;
    qlinear_quantized_linear *qi = NULL, *qp = NULL, *qh = NULL, *qb = NULL;
    jobs j;
    pthread_t t[4];
    thread_arg args[4];
    int i, mism = 0, errs = 0;

    memset(&j, 0, sizeof j);
    pthread_mutex_init(&j.lock, NULL);
    j.threads = 3;
    REQUIRE(qlinear_quant_config_create_int4(&c));
    REQUIRE(qlinear_device_create(1, &inl));
    REQUIRE(qlinear_device_create(3, &pool));
    EXPECT(qlinear_device_create_custom(3, NULL, job_run, &j, NULL, NULL, NULL, &host), QLINEAR_OK);
    REQUIRE(qlinear_quantized_linear_quantize(inl, w, N * K, N, K, b, N, c, &qi));
    REQUIRE(qlinear_quantized_linear_quantize(pool, w, N * K, N, K, b, N, c, &qp));
    REQUIRE(qlinear_quantized_linear_quantize(host, w, N * K, N, K, b, N, c, &qh));
    REQUIRE(qlinear_quantized_linear_forward(qi, x, R, R * K, y1, R * N));
    REQUIRE(qlinear_quantized_linear_forward(qp, x, R, R * K, y2, R * N));
    j.runs = 0;
    REQUIRE(qlinear_quantized_linear_forward(qh, x, R, R * K, y3, R * N));
    CHECK(j.runs > 0 && j.tasks > 1, "host job system ran the forward (%zu run calls, %zu tasks)", j.runs, j.tasks);
    CHECK(same_bits(y1, y2, R * N), "owned pool (3 threads) == inline, bit for bit");
    CHECK(same_bits(y1, y3, R * N), "host job system == inline, bit for bit");

    /* a job system that returns without running its tasks is reported, not trusted */
    EXPECT(qlinear_device_create_custom(2, NULL, job_run_broken, NULL, NULL, NULL, NULL, &broken), QLINEAR_OK);
    {
        layout L;
        layout_get(qi, &L);
        REQUIRE(qlinear_quantized_linear_from_parts(broken, N, K, L.bits, L.granularity, L.group_size,
                                                    L.scale_dtype, L.codes, L.codes_len, L.scales, L.scales_len,
                                                    L.zeros, L.zeros_len, b, N, L.mode, &qb));
        layout_free(&L);
    }
    EXPECT(qlinear_quantized_linear_forward(qb, x, R, R * K, y3, R * N), QLINEAR_ERR_INTERNAL);

    /* 4 caller threads on one handle (owned pool device) */
    for (i = 0; i < 4; i++) {
        args[i].l = qp;
        args[i].x = x;
        args[i].rows = (i % 2) ? R : 1;
        args[i].in = K;
        args[i].out = N;
        args[i].expect = y1;
        args[i].mismatches = args[i].errors = 0;
        pthread_create(&t[i], NULL, forward_thread, &args[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        mism += args[i].mismatches;
        errs += args[i].errors;
    }
    CHECK(errs == 0 && mism == 0, "4 threads x 20 forwards on one handle: bit-identical to single thread");

    qlinear_quantized_linear_free(qi);
    qlinear_quantized_linear_free(qp);
    qlinear_quantized_linear_free(qh);
    qlinear_quantized_linear_free(qb);
    qlinear_device_free(inl);
    qlinear_device_free(pool);
    qlinear_device_free(host);
    qlinear_device_free(broken);
    qlinear_quant_config_free(c);
    pthread_mutex_destroy(&j.lock);
    free(w);
    free(b);
    free(x);
    free(y1);
    free(y2);
    free(y3);
}

/* A counting host allocator: used while a layer lives, everything returned after. */
static void test_allocator(void) {
    enum { N = 48, K = 64, R = 2 };
    float *w = rand_vec(N * K, 0.3f), *x = rand_vec(R * K, 1.0f), y[R * N], y_ref[R * N];
    counting_alloc a;
    qlinear_device *d = NULL, *plain = NULL;
    qlinear_quant_config *c = NULL;
    qlinear_quantized_linear *q = NULL, *q_ref = NULL;
    qlinear_linear *lin = NULL;

    memset(&a, 0, sizeof a);
    pthread_mutex_init(&a.lock, NULL);
    REQUIRE(qlinear_quant_config_create_int8(&c));
    EXPECT(qlinear_device_create_custom(1, NULL, NULL, NULL, ca_alloc, ca_free, &a, &d), QLINEAR_OK);
    REQUIRE(qlinear_device_create(1, &plain));
    EXPECT(qlinear_quantized_linear_quantize(d, w, N * K, N, K, NULL, 0, c, &q), QLINEAR_OK);
    CHECK(a.live > 0, "host allocator holds %ld blocks (%zu bytes) while a layer lives", a.live, a.bytes);
    REQUIRE(qlinear_linear_create(d, w, N * K, N, K, NULL, 0, &lin));
    REQUIRE(qlinear_quantized_linear_quantize(plain, w, N * K, N, K, NULL, 0, c, &q_ref));
    qlinear_device_free(d); /* layers keep the device alive */
    REQUIRE(qlinear_quantized_linear_forward(q, x, R, R * K, y, R * N));
    REQUIRE(qlinear_quantized_linear_forward(q_ref, x, R, R * K, y_ref, R * N));
    CHECK(same_bits(y, y_ref, R * N), "layer on host-allocated memory == layer on the global heap");
    CHECK(a.live > 0, "device freed, layers alive: blocks still held (%ld)", a.live);
    qlinear_quantized_linear_free(q);
    qlinear_linear_free(lin);
    CHECK(a.live == 0 && a.bytes == 0 && a.total > 0, "every host allocation returned (%ld made)", a.total);

    /* an allocator that fails */
    a.fail = 1;
    d = NULL;
    q = NULL;
    REQUIRE(qlinear_device_create_custom(1, NULL, NULL, NULL, ca_alloc, ca_free, &a, &d));
    EXPECT(qlinear_quantized_linear_quantize(d, w, N * K, N, K, NULL, 0, c, &q), QLINEAR_ERR_OUT_OF_MEMORY);
    CHECK(q == NULL, "out of memory leaves *out untouched");
    qlinear_device_free(d);

    qlinear_quantized_linear_free(q_ref);
    qlinear_device_free(plain);
    qlinear_quant_config_free(c);
    pthread_mutex_destroy(&a.lock);
    free(w);
    free(x);
}

/* ---------------------------------------------------------------- model files */

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

static void test_model(const qlinear_device *dev) {
    enum { N = 9, K = 40, R = 2 };
    float *w = rand_vec(N * K, 0.3f), *b = rand_vec(N, 0.1f), *x = rand_vec(R * K, 1.0f);
    float y_a[R * N], y_b[R * N], y_got[R * N];
    qlinear_quant_config *c8 = NULL, *c4 = NULL;
    qlinear_quantized_linear *qa = NULL, *qb = NULL, *got = NULL, *bad = NULL;
    qlinear_model *m = NULL, *mm = NULL, *bad_m = NULL;
    const qlinear_quantized_linear *layers[2];
    const char *names[2] = {"attn.q_proj", "mlp.up_proj"};
    const char *name = NULL;
    char path[512], never[512];
    unsigned char *bytes = NULL;
    size_t len = 0, count = 0;
    FILE *f;

    REQUIRE(qlinear_quant_config_create_int8(&c8));
    REQUIRE(qlinear_quant_config_create_int4_uniform(&c4));
    REQUIRE(qlinear_quant_config_set_symmetric(c4, false));
    REQUIRE(qlinear_quantized_linear_quantize(dev, w, N * K, N, K, b, N, c8, &qa));
    REQUIRE(qlinear_quantized_linear_quantize(dev, w, N * K, N, K, NULL, 0, c4, &qb));
    REQUIRE(qlinear_quantized_linear_forward(qa, x, R, R * K, y_a, R * N));
    REQUIRE(qlinear_quantized_linear_forward(qb, x, R, R * K, y_b, R * N));
    layers[0] = qa;
    layers[1] = qb;

    temp_path(path, sizeof path, "qlinear_model");
    temp_path(never, sizeof never, "qlinear_never_written");
    f = fopen(path, "wb"); /* an existing file, which the save replaces */
    CHECK(f != NULL, "create %s", path);
    if (f) fclose(f);
    EXPECT(qlinear_model_save_file(path, layers, names, 2), QLINEAR_OK);
    EXPECT(qlinear_model_save_file(NULL, layers, names, 2), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_model_save_file(path, NULL, names, 2), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_model_save_file(path, layers, NULL, 2), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_model_save_file("/nonexistent-dir/x.qlin", layers, names, 2), QLINEAR_ERR_IO);
    {
        const char *dup[2] = {"same", "same"};
        EXPECT(qlinear_model_save_file(never, layers, dup, 2), QLINEAR_ERR_INVALID_ARGUMENT);
        f = fopen(never, "rb");
        CHECK(f == NULL, "a refused save created %s", never);
        if (f) fclose(f);
        remove(never);
    }

    /* load from file */
    EXPECT(qlinear_model_load_file(path, dev, &m), QLINEAR_OK);
    EXPECT(qlinear_model_load_file(NULL, dev, &bad_m), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_model_load_file(path, NULL, &bad_m), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_model_load_file(path, dev, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_model_load_file("/nonexistent-dir/missing.qlin", dev, &bad_m), QLINEAR_ERR_IO);
    CHECK(bad_m == NULL, "failed loads leave *out untouched");
    EXPECT(qlinear_model_layer_count(m, &count), QLINEAR_OK);
    CHECK(count == 2, "layer count %zu", count);
    EXPECT(qlinear_model_layer_count(NULL, &count), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_model_layer_name(m, 1, &name), QLINEAR_OK);
    CHECK(name && strcmp(name, "mlp.up_proj") == 0, "layer 1 name in file order");
    EXPECT(qlinear_model_layer_name(m, 2, &name), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_model_layer_name(m, 0, NULL), QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT(qlinear_model_get_layer(m, "attn.q_proj", &got), QLINEAR_OK);
    EXPECT(qlinear_model_get_layer(m, "nope", &bad), QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT(qlinear_model_get_layer(m, NULL, &bad), QLINEAR_ERR_NULL_ARGUMENT);
    CHECK(bad == NULL, "unknown layer leaves *out untouched");
    qlinear_model_free(m); /* the layer handle outlives the model */
    REQUIRE(qlinear_quantized_linear_forward(got, x, R, R * K, y_got, R * N));
    CHECK(same_bits(y_got, y_a, R * N), "loaded int8 layer: bit-identical forward");
    qlinear_quantized_linear_free(got);
    got = NULL;

    /* save to memory: the same bytes as the file, and they load back bit for bit */
    {
        uint8_t *mem = NULL, *untouched = (uint8_t *)&len;
        size_t mem_len = 0, file_len = 0;
        unsigned char *file_bytes = read_all(path, &file_len);
        qlinear_model *from_mem = NULL;
        qlinear_quantized_linear *l0 = NULL;
        float *y_mem = malloc(R * N * sizeof(float));
        EXPECT(qlinear_model_save_memory(layers, names, 2, &mem, &mem_len), QLINEAR_OK);
        CHECK(mem != NULL && file_bytes != NULL && mem_len == file_len && memcmp(mem, file_bytes, mem_len) == 0,
              "save_memory gives the bytes save_file wrote (%zu)", mem_len);
        EXPECT(qlinear_model_load_memory(mem, mem_len, dev, &from_mem), QLINEAR_OK);
        EXPECT(qlinear_model_get_layer(from_mem, "attn.q_proj", &l0), QLINEAR_OK);
        REQUIRE(qlinear_quantized_linear_forward(l0, x, R, R * K, y_mem, R * N));
        CHECK(same_bits(y_mem, y_a, R * N), "save_memory -> load_memory: bit-identical forward");
        EXPECT(qlinear_model_save_memory(NULL, names, 2, &untouched, &mem_len), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_model_save_memory(layers, names, 2, NULL, &mem_len), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_model_save_memory(layers, names, 2, &untouched, NULL), QLINEAR_ERR_NULL_ARGUMENT);
        CHECK(untouched == (uint8_t *)&len, "failed save_memory leaves *out untouched");
        qlinear_bytes_free(mem, mem_len);
        qlinear_bytes_free(NULL, 0);
        qlinear_quantized_linear_free(l0);
        qlinear_model_free(from_mem);
        free(file_bytes);
        free(y_mem);
    }

    /* load from memory; the buffer is freed right after the call */
    bytes = read_all(path, &len);
    CHECK(bytes != NULL && len > 64, "read back %zu bytes", len);
    if (bytes) {
        EXPECT(qlinear_model_load_memory(bytes, len, dev, &mm), QLINEAR_OK);
        EXPECT(qlinear_model_load_memory(NULL, len, dev, &bad_m), QLINEAR_ERR_NULL_ARGUMENT);
        EXPECT(qlinear_model_load_memory(bytes, 0, dev, &bad_m), QLINEAR_ERR_CORRUPT);
        EXPECT(qlinear_model_load_memory(bytes, len - 1, dev, &bad_m), QLINEAR_ERR_CORRUPT);
        bytes[len - 5] ^= 0x40; /* a payload byte: checksum mismatch */
        EXPECT(qlinear_model_load_memory(bytes, len, dev, &bad_m), QLINEAR_ERR_CORRUPT);
        bytes[len - 5] ^= 0x40;
        bytes[0] = 'X'; /* magic */
        EXPECT(qlinear_model_load_memory(bytes, len, dev, &bad_m), QLINEAR_ERR_CORRUPT);
        CHECK(strstr(qlinear_last_error_message(), "magic") != NULL, "corrupt message names the magic");
        CHECK(bad_m == NULL, "corrupt loads leave *out untouched");
        free(bytes);
        bytes = NULL;
        EXPECT(qlinear_model_get_layer(mm, "mlp.up_proj", &got), QLINEAR_OK);
        REQUIRE(qlinear_quantized_linear_forward(got, x, R, R * K, y_got, R * N));
        CHECK(same_bits(y_got, y_b, R * N), "layer loaded from memory: bit-identical forward");
        qlinear_quantized_linear_free(got);
        qlinear_model_free(mm);
    }
    qlinear_model_free(NULL);
    remove(path);

    qlinear_quantized_linear_free(qa);
    qlinear_quantized_linear_free(qb);
    qlinear_quant_config_free(c8);
    qlinear_quant_config_free(c4);
    free(w);
    free(b);
    free(x);
}

int main(void) {
    qlinear_device *dev = NULL;
    test_version_and_errors();
    test_devices();
    test_configs();
    REQUIRE(qlinear_device_create(2, &dev));
    test_linear(dev);
    test_recipes(dev);
    test_quantized_errors(dev);
    test_model(dev);
    qlinear_device_free(dev);
    test_executors();
    test_allocator();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    if (g_failed) {
        fprintf(stderr, "test_qlinear: %d check(s) failed\n", g_failed);
        return 1;
    }
    return 0;
}
