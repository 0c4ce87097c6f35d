// qlinear C++ example: quantize a 1024 -> 256 layer to INT4, run a batch through it, and
// compare with the f32 layer. Built by bindings/cpp/examples/CMakeLists.txt.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "qlinear.hpp"

int main() {
    constexpr std::size_t in = 1024, out = 256, rows = 4;
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.f, 0.05f);
    std::vector<float> weights(out * in), bias(out), x(rows * in);
    for (auto& w : weights) w = normal(rng);
    for (auto& b : bias) b = normal(rng);
    for (auto& v : x) v = normal(rng) * 20.f;

    try {
        qlinear::Device device;  // one worker per core
        qlinear::Linear dense(device, weights, out, in, bias);
        auto config = qlinear::QuantConfig::int4();
        config.granularity(qlinear::Granularity::Group, 64);
        qlinear::QuantizedLinear layer = qlinear::quantize(dense, config);

        std::vector<float> y(rows * out);
        layer.forward_into(x, rows, y);  // no allocation on the hot path
        const std::vector<float> ref = dense.forward(x, rows);

        double err = 0, norm = 0;
        for (std::size_t i = 0; i < y.size(); i++) {
            err += (y[i] - ref[i]) * (y[i] - ref[i]);
            norm += ref[i] * ref[i];
        }
        std::printf("qlinear %s on %s with %zu threads\n", qlinear::version().c_str(),
                    device.isa().c_str(), device.threads());
        std::printf("layer %zu -> %zu, int%u, group %zu\n", layer.in_features(),
                    layer.out_features(), layer.bits(), layer.group_size());
        std::printf("relative error vs f32: %.4f\n", std::sqrt(err / norm));
        std::printf("weights: %zu bytes, memory saved: %zu bytes (of %zu)\n", layer.weight_bytes(),
                    layer.memory_saved(), 4 * in * out);
    } catch (const qlinear::Error& e) {
        std::fprintf(stderr, "qlinear error %d: %s\n", static_cast<int>(e.status()), e.what());
        return 1;
    }
    return 0;
}
