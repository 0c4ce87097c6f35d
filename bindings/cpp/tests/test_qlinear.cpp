// GoogleTest suite for bindings/cpp/qlinear.hpp.
//
// tests/bindings.rs builds and runs it (g++ -std=c++17 -Wall -Wextra -Werror
// -fsanitize=address,undefined) against target/<profile>/libqlinear.so. By hand:
//   g++ -std=c++17 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-omit-frame-pointer
//       -Iinclude -Ibindings/cpp bindings/cpp/tests/test_qlinear.cpp -Ltarget/debug -lqlinear
//       -Wl,-rpath,<dir holding libqlinear.so.0> -lgtest -lgtest_main -pthread -o test_qlinear_cpp
#include "qlinear.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <limits>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

// Move-only handles with noexcept moves.
template <class T>
constexpr bool move_only_v = !std::is_copy_constructible_v<T> && !std::is_copy_assignable_v<T> &&
                             std::is_nothrow_move_constructible_v<T> &&
                             std::is_nothrow_move_assignable_v<T>;
static_assert(move_only_v<qlinear::Device>);
static_assert(move_only_v<qlinear::QuantConfig>);
static_assert(move_only_v<qlinear::Linear>);
static_assert(move_only_v<qlinear::Model>);
static_assert(move_only_v<qlinear::QuantizedLinear>);
static_assert(std::is_base_of_v<std::runtime_error, qlinear::Error>);

// Deterministic uniform values in [-scale, scale).
std::vector<float> random_vec(std::size_t n, float scale, std::uint64_t seed) {
    std::vector<float> v(n);
    std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (auto& x : v) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x = static_cast<float>((static_cast<double>(s >> 11) / 9007199254740992.0 * 2.0 - 1.0) *
                               scale);
    }
    return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// w[r][c] = scale * (q - zero), straight from the documented layout.
double dequant(const qlinear::QuantizedParts& p, std::size_t r, std::size_t c) {
    int q;
    if (p.bits == 8) {
        q = static_cast<std::int8_t>(p.codes[r * p.in_features + c]);
    } else {
        std::uint8_t b = p.codes[r * ((p.in_features + 1) / 2) + c / 2];
        int nib = (c % 2 == 0) ? (b & 0x0F) : (b >> 4);
        // A codebook nibble indexes its levels; an integer nibble is two's complement.
        q = !p.codebook.empty() ? p.codebook[nib] : nib >= 8 ? nib - 16 : nib;
    }
    std::size_t gs =
        p.granularity == qlinear::Granularity::Group ? p.group_size : p.in_features;
    std::size_t groups = (p.in_features + gs - 1) / gs;
    std::size_t si =
        p.granularity == qlinear::Granularity::PerTensor ? 0 : r * groups + c / gs;
    int zero = p.zero_points.empty() ? 0 : p.zero_points[si];
    return static_cast<double>(p.scales[si]) * static_cast<double>(q - zero);
}

// Compares y with a double reference built from the layer's copied-out parts.
void expect_matches_reference(const qlinear::QuantizedLinear& q, const std::vector<float>& x,
                              std::size_t rows, const std::vector<float>& bias,
                              const std::vector<float>& y) {
    const qlinear::QuantizedParts p = q.parts();
    const std::size_t n = p.out_features, k = p.in_features;
    ASSERT_EQ(y.size(), rows * n);
    for (std::size_t r = 0; r < rows; r++) {
        double xmax = 0;
        for (std::size_t c = 0; c < k; c++) xmax = std::fmax(xmax, std::fabs(x[r * k + c]));
        for (std::size_t j = 0; j < n; j++) {
            double ref = bias.empty() ? 0 : bias[j], mag = std::fabs(ref), sw = 0;
            for (std::size_t c = 0; c < k; c++) {
                double w = dequant(p, j, c);
                ref += static_cast<double>(x[r * k + c]) * w;
                mag += std::fabs(static_cast<double>(x[r * k + c]) * w);
                sw += std::fabs(w);
            }
            double tol = 1e-4 * mag + 1e-6;
            // Either dyn8 mode: half a step of the row's largest activation bounds the
            // block-wise steps too.
            if (p.activation_mode != qlinear::ActivationMode::Exact)
                tol += xmax / 127.0 / 2.0 * sw;
            EXPECT_NEAR(y[r * n + j], ref, tol) << "row " << r << " out " << j;
        }
    }
}

// Runs `f` and checks it throws qlinear::Error with `status` and a non-empty message.
template <class F>
void expect_error(F&& f, qlinear_status status) {
    try {
        f();
        ADD_FAILURE() << "no qlinear::Error thrown (want status " << status << ")";
    } catch (const qlinear::Error& e) {
        EXPECT_EQ(e.status(), status) << e.what();
        EXPECT_STRNE(e.what(), "");
    }
}

constexpr std::size_t N = 48, K = 64, R = 3;

}  // namespace

TEST(Version, MatchesHeader) {
    EXPECT_EQ(qlinear::version(), QLINEAR_VERSION_STRING);
}

TEST(Device, Construction) {
    qlinear::Device inline_dev(1);
    EXPECT_EQ(inline_dev.threads(), 1u);
    qlinear::Device pool(3);
    EXPECT_EQ(pool.threads(), 3u);
    qlinear::Device all;
    EXPECT_GE(all.threads(), 1u);
    const std::string isa = inline_dev.isa();
    EXPECT_TRUE(isa == "scalar" || isa == "avx2" || isa == "avx512") << isa;

    EXPECT_TRUE(qlinear::Device::isa_available("scalar"));
    EXPECT_EQ(qlinear::Device::with_isa(1, "scalar").isa(), "scalar");
    for (const char* name : {"avx2", "avx512"}) {
        if (qlinear::Device::isa_available(name)) {
            EXPECT_EQ(qlinear::Device::with_isa(1, name).isa(), name);
        } else {
            expect_error([&] { qlinear::Device::with_isa(1, name); }, QLINEAR_ERR_UNSUPPORTED);
        }
    }
    expect_error([] { qlinear::Device::with_isa(1, "sse9"); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([] { qlinear::Device::isa_available("sse9"); }, QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(qlinear::Device::custom(2, "scalar", nullptr, nullptr, nullptr, nullptr, nullptr)
                  .threads(),
              2u);
    qlinear_alloc_fn alloc_only = [](void*, std::size_t, std::size_t) -> void* { return nullptr; };
    expect_error([&] { qlinear::Device::custom(1, nullptr, nullptr, nullptr, alloc_only, nullptr, nullptr); },
                 QLINEAR_ERR_NULL_ARGUMENT);
}

TEST(QuantConfig, SettersAndErrors) {
    auto c = qlinear::QuantConfig::int8();
    c.bits(4).bits(8).group_size(64).group_size(0).symmetric(false).search(false);
    c.granularity(qlinear::Granularity::PerTensor)
        .activation_mode(qlinear::ActivationMode::Dyn8)
        .scale_dtype(qlinear::ScaleDtype::F32);
    expect_error([&] { c.bits(5); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { c.group_size(48); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { c.group_size(16); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { c.group_size(2048); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { c.granularity(qlinear::Granularity::Group, 33); },
                 QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { c.granularity(static_cast<qlinear::Granularity>(9)); },
                 QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { c.activation_mode(static_cast<qlinear::ActivationMode>(7)); },
                 QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { c.scale_dtype(static_cast<qlinear::ScaleDtype>(7)); },
                 QLINEAR_ERR_INVALID_ARGUMENT);
    auto c4 = qlinear::QuantConfig::int4();
    EXPECT_NE(c4.get(), nullptr);
    // The cb4 default has no zero points; the uniform grid takes them.
    expect_error([&] { c4.symmetric(false); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { c4.format(static_cast<qlinear::WeightFormat>(7)); },
                 QLINEAR_ERR_INVALID_ARGUMENT);
    qlinear::QuantConfig::int4_uniform().symmetric(false);
}

TEST(Linear, ForwardMatchesReference) {
    qlinear::Device dev(1);
    auto w = random_vec(N * K, 0.2f, 1), b = random_vec(N, 0.1f, 2), x = random_vec(R * K, 1.f, 3);
    qlinear::Linear lin(dev, w, N, K, b);
    EXPECT_EQ(lin.out_features(), N);
    EXPECT_EQ(lin.in_features(), K);
    auto y = lin.forward(x, R);
    ASSERT_EQ(y.size(), R * N);
    for (std::size_t r = 0; r < R; r++)
        for (std::size_t j = 0; j < N; j++) {
            double ref = b[j], mag = std::fabs(b[j]);
            for (std::size_t c = 0; c < K; c++) {
                ref += static_cast<double>(x[r * K + c]) * w[j * K + c];
                mag += std::fabs(static_cast<double>(x[r * K + c]) * w[j * K + c]);
            }
            EXPECT_NEAR(y[r * N + j], ref, 1e-5 * mag + 1e-6);
        }
    std::vector<float> y2(R * N);
    lin.forward_into(x, R, y2);
    EXPECT_TRUE(same_bits(y, y2));
    EXPECT_TRUE(same_bits(y, lin.forward(x.data(), x.size(), R)));
    EXPECT_TRUE(same_bits(y, lin.forward(qlinear::Span<const float>(x), R)));

    // errors
    expect_error([&] { qlinear::Linear(dev, qlinear::Span<const float>(w.data(), N * K - 1), N, K); },
                 QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { qlinear::Linear(dev, w, N, K, qlinear::Span<const float>(b.data(), N - 1)); },
                 QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { qlinear::Linear(dev, w, 0, K); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { qlinear::Linear(dev, qlinear::Span<const float>(), N, K); },
                 QLINEAR_ERR_NULL_ARGUMENT);
    auto wn = w;
    wn[5] = std::numeric_limits<float>::quiet_NaN();
    expect_error([&] { qlinear::Linear(dev, wn, N, K); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { lin.forward(x, R + 1); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { lin.forward(x, 0); }, QLINEAR_ERR_INVALID_ARGUMENT);
    std::vector<float> small(R * N - 1, 7.f);
    expect_error([&] { lin.forward_into(x, R, small); }, QLINEAR_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(small[0], 7.f);
}

struct Recipe {
    const char* name;
    qlinear::WeightFormat format;
    qlinear::Granularity granularity;
    std::size_t group;
    bool symmetric;
    qlinear::ScaleDtype scale_dtype;
    qlinear::ActivationMode mode;
};

class Recipes : public ::testing::TestWithParam<Recipe> {};

TEST_P(Recipes, QuantizeForwardMatchesReference) {
    const Recipe& rc = GetParam();
    qlinear::Device dev(2);
    for (auto [n, k] : {std::pair<std::size_t, std::size_t>{48, 64}, {17, 33}}) {
        SCOPED_TRACE(std::string(rc.name) + " " + std::to_string(n) + "x" + std::to_string(k));
        auto w = random_vec(n * k, 0.3f, 10 + n), b = random_vec(n, 0.1f, 20 + n),
             x = random_vec(R * k, 1.f, 30 + n);
        auto cfg = qlinear::QuantConfig::int8();
        cfg.format(rc.format)
            .granularity(rc.granularity, rc.group)
            .symmetric(rc.symmetric)
            .scale_dtype(rc.scale_dtype)
            .activation_mode(rc.mode);
        auto q = qlinear::quantize(dev, w, n, k, cfg, b);
        EXPECT_EQ(q.out_features(), n);
        EXPECT_EQ(q.in_features(), k);
        EXPECT_EQ(q.bits(), rc.format == qlinear::WeightFormat::Int8 ? 8u : 4u);
        EXPECT_EQ(q.format(), rc.format);
        EXPECT_EQ(q.granularity(), rc.granularity);
        EXPECT_EQ(q.group_size(), rc.group);
        EXPECT_EQ(q.symmetric(), rc.symmetric);
        EXPECT_EQ(q.scale_dtype(), rc.scale_dtype);
        EXPECT_EQ(q.activation_mode(), rc.mode);
        const std::size_t bytes = q.weight_bytes();
        EXPECT_GT(bytes, 0u);
        EXPECT_EQ(q.memory_saved(), 4 * n * k > bytes ? 4 * n * k - bytes : 0);

        auto y = q.forward(x, R);
        expect_matches_reference(q, x, R, b, y);

        // Every overload agrees bit for bit.
        std::vector<float> y2(R * n, -1.f);
        q.forward_into(x, R, y2);
        EXPECT_TRUE(same_bits(y, y2));
        EXPECT_TRUE(same_bits(y, q.forward(x.data(), x.size(), R)));
        EXPECT_TRUE(same_bits(y, q.forward(qlinear::Span<const float>(x.data(), x.size()), R)));
        std::fill(y2.begin(), y2.end(), 0.f);
        q.forward_into(x.data(), x.size(), R, y2.data(), y2.size());
        EXPECT_TRUE(same_bits(y, y2));

        // Rebuilt from its parts (plus the bias): bit-identical.
        auto parts = q.parts();
        EXPECT_EQ(parts.zero_points.empty(), rc.symmetric);
        EXPECT_EQ(parts.codebook.size(), rc.format == qlinear::WeightFormat::Cb4 ? 16u : 0u);
        auto lengths = qlinear::QuantizedLinear::layout_lengths(n, k, parts.bits,
                                                                parts.granularity, parts.group_size);
        EXPECT_EQ(lengths.first, parts.codes.size());
        EXPECT_EQ(lengths.second, parts.scales.size());
        parts.bias = b;
        auto q2 = qlinear::QuantizedLinear::from_parts(dev, parts);
        EXPECT_TRUE(same_bits(y, q2.forward(x, R)));
    }
}

INSTANTIATE_TEST_SUITE_P(
    All, Recipes,
    ::testing::Values(
        Recipe{"int8_g32_sym_f16", qlinear::WeightFormat::Int8, qlinear::Granularity::Group, 32,
               true, qlinear::ScaleDtype::F16, qlinear::ActivationMode::Exact},
        Recipe{"int4_g32_sym_f16", qlinear::WeightFormat::Int4, qlinear::Granularity::Group, 32,
               true, qlinear::ScaleDtype::F16, qlinear::ActivationMode::Exact},
        Recipe{"int4_g32_asym_f32", qlinear::WeightFormat::Int4, qlinear::Granularity::Group, 32,
               false, qlinear::ScaleDtype::F32, qlinear::ActivationMode::Exact},
        Recipe{"int8_channel_asym", qlinear::WeightFormat::Int8, qlinear::Granularity::PerChannel,
               0, false, qlinear::ScaleDtype::F32, qlinear::ActivationMode::Exact},
        Recipe{"int4_tensor_sym", qlinear::WeightFormat::Int4, qlinear::Granularity::PerTensor, 0,
               true, qlinear::ScaleDtype::F16, qlinear::ActivationMode::Exact},
        Recipe{"int8_g64_dyn8", qlinear::WeightFormat::Int8, qlinear::Granularity::Group, 64,
               true, qlinear::ScaleDtype::F16, qlinear::ActivationMode::Dyn8},
        Recipe{"cb4_g32_f16", qlinear::WeightFormat::Cb4, qlinear::Granularity::Group, 32, true,
               qlinear::ScaleDtype::F16, qlinear::ActivationMode::Exact},
        Recipe{"cb4_g128_f32_dyn8", qlinear::WeightFormat::Cb4, qlinear::Granularity::Group, 128,
               true, qlinear::ScaleDtype::F32, qlinear::ActivationMode::Dyn8},
        Recipe{"int4_channel_dyn8_per_row", qlinear::WeightFormat::Int4,
               qlinear::Granularity::PerChannel, 0, true, qlinear::ScaleDtype::F16,
               qlinear::ActivationMode::Dyn8PerRow}),
    [](const ::testing::TestParamInfo<Recipe>& info) { return std::string(info.param.name); });

TEST(QuantizedLinear, FromLinearAndHalfForwards) {
    qlinear::Device dev(1);
    auto w = random_vec(N * K, 0.3f, 4), b = random_vec(N, 0.1f, 5), x = random_vec(R * K, 1.f, 6);
    qlinear::Linear lin(dev, w, N, K, b);
    auto q = qlinear::quantize(lin, qlinear::QuantConfig::int8());
    auto y = q.forward(x, R);
    expect_matches_reference(q, x, R, b, y);
    auto direct = qlinear::QuantizedLinear::quantize(dev, w, N, K, qlinear::QuantConfig::int8(), b);
    EXPECT_TRUE(same_bits(y, direct.forward(x, R)));

    std::vector<std::uint16_t> xh(R * K, 0x3C00);  // 1.0 in f16
    EXPECT_EQ(q.forward_f16(xh, R).size(), R * N);
    std::vector<std::uint16_t> xb(R * K, 0x3F80);  // 1.0 in bf16
    EXPECT_EQ(q.forward_bf16(xb, R).size(), R * N);
    expect_error([&] { q.forward_f16(xh, R + 1); }, QLINEAR_ERR_INVALID_ARGUMENT);
}

TEST(QuantizedLinear, ErrorsCarryStatusAndMessage) {
    qlinear::Device dev(1);
    auto w = random_vec(17 * 33, 0.3f, 7), b = random_vec(17, 0.1f, 8), x = random_vec(2 * 33, 1.f, 9);
    auto c4 = qlinear::QuantConfig::int4();
    using S = qlinear::Span<const float>;
    // wrong lengths
    expect_error([&] { qlinear::quantize(dev, S(w.data(), w.size() - 1), 17, 33, c4); },
                 QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { qlinear::quantize(dev, w, 17, 34, c4); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { qlinear::quantize(dev, w, 0, 33, c4); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { qlinear::quantize(dev, w, 17, 33, c4, S(b.data(), 16)); },
                 QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] {
        qlinear::quantize(dev, w, std::numeric_limits<std::size_t>::max(),
                          std::numeric_limits<std::size_t>::max(), c4);
    }, QLINEAR_ERR_INVALID_ARGUMENT);
    // NaN / Inf
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
        auto wb = w;
        wb[3] = bad;
        expect_error([&] { qlinear::quantize(dev, wb, 17, 33, c4); }, QLINEAR_ERR_INVALID_ARGUMENT);
        auto bb = b;
        bb[1] = bad;
        expect_error([&] { qlinear::quantize(dev, w, 17, 33, c4, bb); }, QLINEAR_ERR_INVALID_ARGUMENT);
    }
    // null: empty weights, moved-from device/config/layer
    expect_error([&] { qlinear::quantize(dev, S(), 17, 33, c4); }, QLINEAR_ERR_NULL_ARGUMENT);
    qlinear::Device moved_dev(1);
    qlinear::Device sink = std::move(moved_dev);
    expect_error([&] { qlinear::quantize(moved_dev, w, 17, 33, c4); }, QLINEAR_ERR_NULL_ARGUMENT);
    expect_error([&] { moved_dev.threads(); }, QLINEAR_ERR_NULL_ARGUMENT);
    auto moved_cfg = qlinear::QuantConfig::int8();
    auto cfg_sink = std::move(moved_cfg);
    expect_error([&] { qlinear::quantize(dev, w, 17, 33, moved_cfg); }, QLINEAR_ERR_NULL_ARGUMENT);
    expect_error([&] { moved_cfg.bits(8); }, QLINEAR_ERR_NULL_ARGUMENT);

    auto q = qlinear::quantize(dev, w, 17, 33, c4, b);
    // forward errors: wrong lengths, zero or huge rows; y untouched
    expect_error([&] { q.forward(x, 3); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { q.forward(x, 0); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { q.forward(S(x.data(), x.size() - 1), 2); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { q.forward(x, std::numeric_limits<std::size_t>::max()); },
                 QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { q.forward(S(), 2); }, QLINEAR_ERR_NULL_ARGUMENT);
    std::vector<float> y(2 * 17 - 1, 777.f);
    expect_error([&] { q.forward_into(x, 2, y); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { q.forward_into(x.data(), x.size(), 2, nullptr, 34); },
                 QLINEAR_ERR_NULL_ARGUMENT);
    for (float v : y) EXPECT_EQ(v, 777.f);

    // from_parts errors
    auto parts = q.parts();
    auto p = parts;
    p.bits = 5;
    expect_error([&] { qlinear::QuantizedLinear::from_parts(dev, p); }, QLINEAR_ERR_INVALID_ARGUMENT);
    p = parts;
    p.group_size = 48;
    expect_error([&] { qlinear::QuantizedLinear::from_parts(dev, p); }, QLINEAR_ERR_INVALID_ARGUMENT);
    p = parts;
    p.codes.pop_back();
    expect_error([&] { qlinear::QuantizedLinear::from_parts(dev, p); }, QLINEAR_ERR_INVALID_ARGUMENT);
    p = parts;
    p.scales[1] = std::numeric_limits<float>::quiet_NaN();
    expect_error([&] { qlinear::QuantizedLinear::from_parts(dev, p); }, QLINEAR_ERR_INVALID_ARGUMENT);
    p = parts;
    p.codes.clear();
    expect_error([&] { qlinear::QuantizedLinear::from_parts(dev, p); }, QLINEAR_ERR_NULL_ARGUMENT);
    expect_error([&] { qlinear::QuantizedLinear::layout_lengths(17, 33, 3, qlinear::Granularity::Group, 32); },
                 QLINEAR_ERR_INVALID_ARGUMENT);

    // moved-from layer
    auto q_sink = std::move(q);
    expect_error([&] { q.forward(x, 2); }, QLINEAR_ERR_NULL_ARGUMENT);
    expect_error([&] { q.bits(); }, QLINEAR_ERR_NULL_ARGUMENT);
    EXPECT_EQ(q_sink.forward(x, 2).size(), 34u);
}

TEST(Moves, NoDoubleFree) {
    qlinear::Device dev(1);
    auto w = random_vec(N * K, 0.3f, 11), x = random_vec(K, 1.f, 12);
    auto a = qlinear::quantize(dev, w, N, K, qlinear::QuantConfig::int8());
    const auto y = a.forward(x, 1);

    // move-construct
    qlinear::QuantizedLinear b(std::move(a));
    EXPECT_EQ(a.get(), nullptr);
    EXPECT_TRUE(same_bits(y, b.forward(x, 1)));

    // move-assign over a live layer (the old one is freed once)
    auto c = qlinear::quantize(dev, w, N, K, qlinear::QuantConfig::int4());
    c = std::move(b);
    EXPECT_EQ(b.get(), nullptr);
    EXPECT_TRUE(same_bits(y, c.forward(x, 1)));

    // self-move (through a reference so the compiler does not flag it)
    auto& alias = c;
    c = std::move(alias);
    EXPECT_NE(c.get(), nullptr);
    EXPECT_TRUE(same_bits(y, c.forward(x, 1)));

    // assign into a moved-from object, and move an empty one around
    a = std::move(c);
    EXPECT_TRUE(same_bits(y, a.forward(x, 1)));
    qlinear::QuantizedLinear empty(std::move(c));
    EXPECT_EQ(empty.get(), nullptr);

    // the same for the other handles; layers outlive their device
    qlinear::Device d2(std::move(dev));
    auto& dalias = d2;
    d2 = std::move(dalias);
    EXPECT_EQ(d2.threads(), 1u);
    qlinear::Linear lin(d2, w, N, K);
    qlinear::Linear lin2(std::move(lin));
    lin = std::move(lin2);
    auto cfg = qlinear::QuantConfig::int8();
    auto cfg2 = std::move(cfg);
    cfg = std::move(cfg2);
    auto fromlin = qlinear::quantize(lin, cfg);
    { qlinear::Device gone = std::move(d2); }
    EXPECT_TRUE(same_bits(fromlin.forward(x, 1), a.forward(x, 1)));

    std::vector<qlinear::QuantizedLinear> layers;
    for (int i = 0; i < 8; i++)
        layers.push_back(qlinear::quantize(lin, cfg));  // vector growth moves them
    for (const auto& l : layers) EXPECT_TRUE(same_bits(y, l.forward(x, 1)));
}

TEST(Threads, ConcurrentForwardIsBitIdentical) {
    for (std::size_t dev_threads : {std::size_t{1}, std::size_t{2}}) {
        qlinear::Device dev(dev_threads);
        constexpr std::size_t n = 96, k = 160, rows = 5;
        auto w = random_vec(n * k, 0.3f, 13), x = random_vec(rows * k, 1.f, 14);
        auto q = qlinear::quantize(dev, w, n, k, qlinear::QuantConfig::int4());
        const auto expect = q.forward(x, rows);
        std::array<int, 8> mismatches{}, errors{};
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < 8; t++) {
            threads.emplace_back([&, t] {
                std::vector<float> y(rows * n);
                for (int it = 0; it < 50; it++) {
                    try {
                        if (it % 2 == 0) {
                            q.forward_into(x, rows, y);
                        } else {
                            y = q.forward(x, rows);
                        }
                        if (!same_bits(y, expect)) mismatches[t]++;
                    } catch (const qlinear::Error&) {
                        errors[t]++;
                    }
                }
            });
        }
        for (auto& th : threads) th.join();
        for (std::size_t t = 0; t < 8; t++) {
            EXPECT_EQ(mismatches[t], 0) << "thread " << t;
            EXPECT_EQ(errors[t], 0) << "thread " << t;
        }
    }
}

TEST(Model, SaveLoadAndLookUp) {
    qlinear::Device dev(1);
    std::vector<float> w(N * K), b(N), x(R * K);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * static_cast<float>(i));
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = 0.01f * static_cast<float>(i);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.11f * static_cast<float>(i));
    auto q8 = qlinear::quantize(dev, w, N, K, qlinear::QuantConfig::int8(), b);
    auto q4 = qlinear::quantize(dev, w, N, K, qlinear::QuantConfig::int4());
    const std::string path = ::testing::TempDir() + "qlinear_cpp_model.qlin";
    qlinear::Model::save(path, {{"a", &q8}, {"b", &q4}});

    std::vector<float> want = q4.forward(x, R);
    {
        qlinear::QuantizedLinear layer = [&] {
            auto m = qlinear::Model::load(path, dev);
            EXPECT_EQ(m.size(), 2u);
            EXPECT_EQ(m.names(), (std::vector<std::string>{"a", "b"}));
            return m.layer("b");
        }();  // the model is gone; the layer still runs
        std::vector<float> got = layer.forward(x, R);
        EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0);
    }

    std::FILE* f = std::fopen(path.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    std::vector<std::uint8_t> bytes(1 << 16);
    bytes.resize(std::fread(bytes.data(), 1, bytes.size(), f));
    std::fclose(f);
    auto mm = qlinear::Model::load_memory(bytes, dev);
    EXPECT_EQ(mm.name(0), "a");
    // save_memory gives the file's bytes, and they load back bit for bit.
    EXPECT_EQ(qlinear::Model::save_memory({{"a", &q8}, {"b", &q4}}), bytes);
    {
        auto from_mem = qlinear::Model::load_memory(qlinear::Model::save_memory({{"b", &q4}}), dev);
        std::vector<float> a = from_mem.layer("b").forward(x, R), b = q4.forward(x, R);
        EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
    }
    expect_error([&] { qlinear::Model::save_memory({{"a", nullptr}}); }, QLINEAR_ERR_NULL_ARGUMENT);
    expect_error([&] { mm.layer("missing"); }, QLINEAR_ERR_INVALID_ARGUMENT);
    expect_error([&] { mm.name(2); }, QLINEAR_ERR_INVALID_ARGUMENT);
    bytes.back() ^= 1;
    expect_error([&] { qlinear::Model::load_memory(bytes, dev); }, QLINEAR_ERR_CORRUPT);
    expect_error([&] { qlinear::Model::load_memory({}, dev); }, QLINEAR_ERR_CORRUPT);
    expect_error([&] { qlinear::Model::load("/nonexistent/x.qlin", dev); }, QLINEAR_ERR_IO);
    std::remove(path.c_str());
}
