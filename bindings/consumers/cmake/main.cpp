// The C++ consumer: quantizes a layer with each 4-bit and 8-bit default through the RAII
// wrapper (include/qlinear.hpp of the installed tree) and checks int8 against the f32 layer.
#include <cmath>
#include <cstdio>
#include <vector>

#include "qlinear.hpp"

int main() {
    const std::size_t out = 32, in = 128, rows = 2;
    std::vector<float> w(out * in), x(rows * in);
    for (std::size_t i = 0; i < w.size(); i++) w[i] = std::sin(0.37f * static_cast<float>(i)) * 0.1f;
    for (std::size_t i = 0; i < x.size(); i++) x[i] = std::cos(0.11f * static_cast<float>(i));
    try {
        qlinear::Device device(1);
        qlinear::Linear f32(device, w, out, in);
        std::vector<float> want = f32.forward(x, rows);
        auto q8 = qlinear::quantize(device, w, out, in, qlinear::QuantConfig::int8());
        auto q4 = qlinear::quantize(device, w, out, in, qlinear::QuantConfig::int4());
        std::vector<float> got = q8.forward(x, rows);
        double err = 0, norm = 0;
        for (std::size_t i = 0; i < got.size(); i++) {
            err += (got[i] - want[i]) * (got[i] - want[i]);
            norm += want[i] * want[i];
        }
        if (std::sqrt(err / norm) > 1e-2 || q4.format() != qlinear::WeightFormat::Cb4) {
            std::fprintf(stderr, "FAIL: int8 relative error %g\n", std::sqrt(err / norm));
            return 1;
        }
        std::printf("qlinear %s via CMake: int8 relative error %.2e, cb4 saves %zu bytes\n",
                    qlinear_version(), std::sqrt(err / norm), q4.memory_saved());
    } catch (const qlinear::Error& e) {
        std::fprintf(stderr, "FAIL: %s\n", e.what());
        return 1;
    }
    return 0;
}
