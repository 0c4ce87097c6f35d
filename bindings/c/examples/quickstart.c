/*
 * qlinear quickstart: quantize a random layer to INT4 and run one row through it.
 *
 *   gcc -std=c99 -Iinclude bindings/c/examples/quickstart.c -Ltarget/release -lqlinear \
 *       -Wl,-rpath,$PWD/target/release -lm -o quickstart && ./quickstart
 * (the linker records libqlinear.so.0: make that name point at libqlinear.so)
 */
#include <stdio.h>
#include <stdlib.h>

#include "qlinear.h"

/* Prints the failing call and the library's message, then exits. */
static void check(qlinear_status s, const char *what) {
    if (s != QLINEAR_OK) {
        fprintf(stderr, "%s failed (%d): %s\n", what, (int)s, qlinear_last_error_message());
        exit(1);
    }
}

int main(void) {
    enum { IN = 256, OUT = 64 };
    static float weights[OUT * IN], bias[OUT], x[IN], y[OUT];
    qlinear_device *device = NULL;
    qlinear_quant_config *config = NULL;
    qlinear_quantized_linear *layer = NULL;
    size_t saved = 0, bytes = 0;
    int i;

    srand(42);
    for (i = 0; i < OUT * IN; i++) weights[i] = (float)rand() / RAND_MAX - 0.5f;
    for (i = 0; i < OUT; i++) bias[i] = 0.01f * (float)i;
    for (i = 0; i < IN; i++) x[i] = (float)rand() / RAND_MAX;

    printf("qlinear %s\n", qlinear_version());
    check(qlinear_device_create(0, &device), "qlinear_device_create"); /* 0 = all cores */
    check(qlinear_quant_config_create_int4(&config), "qlinear_quant_config_create_int4");
    check(qlinear_quantized_linear_quantize(device, weights, OUT * IN, OUT, IN, bias, OUT, config, &layer),
          "qlinear_quantized_linear_quantize");

    /* one row in, one row out; buffers are the caller's, lengths are explicit */
    check(qlinear_quantized_linear_forward(layer, x, 1, IN, y, OUT), "qlinear_quantized_linear_forward");
    printf("y[0..3] = %.4f %.4f %.4f %.4f\n", y[0], y[1], y[2], y[3]);

    check(qlinear_quantized_linear_weight_bytes(layer, &bytes), "qlinear_quantized_linear_weight_bytes");
    check(qlinear_quantized_linear_memory_savings_bytes(layer, &saved),
          "qlinear_quantized_linear_memory_savings_bytes");
    printf("weights: %zu bytes instead of %zu (saved %zu bytes)\n", bytes, (size_t)(OUT * IN * 4), saved);

    qlinear_quantized_linear_free(layer);
    qlinear_quant_config_free(config);
    qlinear_device_free(device);
    return 0;
}
