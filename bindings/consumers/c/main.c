/* A C program that uses an installed qlinear and nothing else: built by .ci/consumers.sh with
 *   cc main.c $(pkg-config --cflags --libs qlinear)                 (shared)
 *   cc main.c $(pkg-config --cflags --static --libs qlinear) -static (static)
 * It quantizes a small layer, runs it, checks the result against a double-precision
 * reference computed here from the copied-out weights, and prints the library's version. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "qlinear.h"

#define OUT 24
#define IN 96
#define ROWS 3

static int fail(const char *what) {
    fprintf(stderr, "FAIL %s: %s\n", what, qlinear_last_error_message());
    return 1;
}

int main(void) {
    static float w[OUT * IN], x[ROWS * IN], y[ROWS * OUT], scales[OUT * IN / 32];
    static unsigned char codes[OUT * IN / 2];
    signed char levels[16];
    qlinear_device *dev = NULL;
    qlinear_quant_config *cfg = NULL;
    qlinear_quantized_linear *layer = NULL;
    unsigned s = 1;
    int r, o, i, bad = 0;
    for (i = 0; i < OUT * IN; i++) w[i] = (float)((s = s * 1103515245u + 12345u) >> 16) / 65536.0f - 0.5f;
    for (i = 0; i < ROWS * IN; i++) x[i] = (float)((s = s * 1103515245u + 12345u) >> 16) / 32768.0f - 1.0f;

    if (qlinear_device_create(1, &dev) != QLINEAR_OK) return fail("device");
    if (qlinear_quant_config_create_int4(&cfg) != QLINEAR_OK) return fail("config");
    if (qlinear_quantized_linear_quantize(dev, w, OUT * IN, OUT, IN, NULL, 0, cfg, &layer) != QLINEAR_OK)
        return fail("quantize");
    if (qlinear_quantized_linear_forward(layer, x, ROWS, ROWS * IN, y, ROWS * OUT) != QLINEAR_OK)
        return fail("forward");
    /* y = x · (scale · level[code])ᵀ, from the documented layout */
    if (qlinear_quantized_linear_copy_codes(layer, codes, sizeof codes) != QLINEAR_OK ||
        qlinear_quantized_linear_copy_scales(layer, scales, OUT * IN / 32) != QLINEAR_OK ||
        qlinear_quantized_linear_copy_codebook(layer, levels, 16) != QLINEAR_OK)
        return fail("copy-out");
    for (r = 0; r < ROWS; r++)
        for (o = 0; o < OUT; o++) {
            double ref = 0, mag = 0;
            for (i = 0; i < IN; i++) {
                unsigned char b = codes[o * (IN / 2) + i / 2];
                int q = i % 2 ? b >> 4 : b & 15;
                double wv = (double)scales[o * (IN / 32) + i / 32] * levels[q];
                ref += x[r * IN + i] * wv;
                mag += fabs(x[r * IN + i] * wv);
            }
            if (fabs(y[r * OUT + o] - ref) > 1e-5 * mag + 1e-6) bad++;
        }
    qlinear_quantized_linear_free(layer);
    qlinear_quant_config_free(cfg);
    qlinear_device_free(dev);
    if (bad) {
        fprintf(stderr, "FAIL: %d outputs differ from the reference\n", bad);
        return 1;
    }
    printf("qlinear %s: cb4 layer %dx%d matches the reference\n", qlinear_version(), OUT, IN);
    return 0;
}
