// qlinear.hpp: header-only C++17 wrapper over the qlinear C ABI (include/qlinear.h).
//
// * Move-only RAII classes own the C handles: Device, QuantConfig, Linear, QuantizedLinear.
//   Copying is deleted, moving is noexcept and leaves the source empty (using an empty object
//   makes the library report QLINEAR_ERR_NULL_ARGUMENT, thrown as qlinear::Error).
// * Every failing C call throws qlinear::Error, which carries the qlinear_status code and the
//   library's last error message (read on the failing thread, right after the call).
// * Thread safety is the C API's: forward/forward_into and the const accessors of a layer may
//   run on many threads at once; construction, assignment and destruction need exclusive
//   access. QuantConfig setters need exclusive access to the config.
// * The library never keeps a pointer passed to it after a call returns.
//
// Link with -lqlinear (the library's SONAME is libqlinear.so.0).
#ifndef QLINEAR_HPP
#define QLINEAR_HPP

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "qlinear.h"

namespace qlinear {

/// A failed qlinear call: status() is the C status code, what() the library's message.
class Error : public std::runtime_error {
public:
    Error(qlinear_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}

    /// The C status code (never QLINEAR_OK).
    qlinear_status status() const noexcept { return status_; }

private:
    qlinear_status status_;
};

/// Throws qlinear::Error for a failed status with the library's thread-local message.
inline void check(qlinear_status status) {
    if (status != QLINEAR_OK) {
        const char* msg = qlinear_last_error_message();
        throw Error(status, msg != nullptr ? msg : "");
    }
}

/// The library version, "MAJOR.MINOR.PATCH".
inline std::string version() { return qlinear_version(); }

/// A non-owning view of contiguous elements (a minimal std::span for C++17).
template <class T>
class Span {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;

    constexpr Span() noexcept = default;
    constexpr Span(T* data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <std::size_t N>
    constexpr Span(T (&array)[N]) noexcept : data_(array), size_(N) {}
    /// From any contiguous container with data() and size() (std::vector, std::array, Span).
    /// The view does not extend a temporary's life: use it within the full expression.
    template <class C,
              class = std::enable_if_t<
                  !std::is_same_v<std::remove_cv_t<std::remove_reference_t<C>>, Span> &&
                  std::is_convertible_v<decltype(std::declval<C&>().data()), T*>>>
    constexpr Span(C&& container) noexcept : data_(container.data()), size_(container.size()) {}

    constexpr T* data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T* begin() const noexcept { return data_; }
    constexpr T* end() const noexcept { return data_ + size_; }
    constexpr T& operator[](std::size_t i) const noexcept { return data_[i]; }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

/// Which weights share one scale (values of qlinear_granularity).
enum class Granularity : std::uint32_t {
    PerTensor = QLINEAR_GRANULARITY_PER_TENSOR,
    PerChannel = QLINEAR_GRANULARITY_PER_CHANNEL,
    Group = QLINEAR_GRANULARITY_GROUP,
};

/// How scales are stored (values of qlinear_scale_dtype).
enum class ScaleDtype : std::uint32_t {
    F32 = QLINEAR_SCALE_F32,
    F16 = QLINEAR_SCALE_F16,
};

/// What forward does with activations (values of qlinear_activation_mode).
enum class ActivationMode : std::uint32_t {
    Exact = QLINEAR_ACTIVATION_EXACT,
    Dyn8 = QLINEAR_ACTIVATION_DYN8,  ///< int8 activations, one scale per 32 inputs
    Dyn8PerRow = QLINEAR_ACTIVATION_DYN8_PER_ROW,  ///< int8 activations, one scale per row
};

/// What a weight code means (values of qlinear_weight_format).
enum class WeightFormat : std::uint32_t {
    Int8 = QLINEAR_FORMAT_INT8,
    Int4 = QLINEAR_FORMAT_INT4,  ///< uniform 4-bit grid −8..7
    Cb4 = QLINEAR_FORMAT_CB4,    ///< 4-bit indices into 16 non-uniform levels (symmetric)
};

namespace detail {

/// Owns one C handle; Free is the handle's qlinear_*_free function.
template <class T, void (*Free)(T*)>
class Handle {
public:
    Handle() noexcept = default;
    explicit Handle(T* p) noexcept : p_(p) {}
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle(Handle&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
    Handle& operator=(Handle&& other) noexcept {
        if (this != &other) {
            reset();
            p_ = std::exchange(other.p_, nullptr);
        }
        return *this;
    }
    ~Handle() { reset(); }

    void reset() noexcept {
        if (p_ != nullptr) Free(p_);
        p_ = nullptr;
    }
    T* get() const noexcept { return p_; }

private:
    T* p_ = nullptr;
};

/// rows * n, or false when it overflows.
inline bool mul(std::size_t rows, std::size_t n, std::size_t* out) noexcept {
    if (n != 0 && rows > std::numeric_limits<std::size_t>::max() / n) return false;
    *out = rows * n;
    return true;
}

/// Runs a forward that returns a fresh vector. When the lengths cannot be right, the C call is
/// still made (with an empty output, which is never valid) so that the error, its status and
/// its message come from the library, and nothing huge is allocated first.
template <class H, class Elem, class Fn>
std::vector<Elem> forward_vec(Fn fn, const H* h, std::size_t in, std::size_t out,
                              const Elem* x, std::size_t x_len, std::size_t rows) {
    std::size_t want_x = 0, y_len = 0;
    if (h == nullptr || !mul(rows, in, &want_x) || want_x != x_len || !mul(rows, out, &y_len) ||
        y_len == 0) {
        Elem dummy{};
        check(fn(h, x, rows, x_len, &dummy, 0));
        throw Error(QLINEAR_ERR_INTERNAL, "qlinear: forward accepted an empty output");
    }
    std::vector<Elem> y(y_len);
    check(fn(h, x, rows, x_len, y.data(), y.size()));
    return y;
}

}  // namespace detail

/// A CPU device: ISA path, worker threads and allocator. Layers keep their own reference, so a
/// Device may be destroyed before the layers created on it.
class Device {
public:
    /// Owns `threads` worker threads (0 = one per core, 1 = run on the caller's thread); the ISA
    /// comes from QLINEAR_ISA or is the best available.
    explicit Device(std::size_t threads = 0) {
        qlinear_device* d = nullptr;
        check(qlinear_device_create(threads, &d));
        h_ = Handle(d);
    }

    /// Forces the ISA path: "scalar", "avx2", "avx512" or "auto". Unknown names throw
    /// INVALID_ARGUMENT; a path this CPU lacks throws UNSUPPORTED.
    static Device with_isa(std::size_t threads, const std::string& isa) {
        qlinear_device* d = nullptr;
        check(qlinear_device_create_with_isa(threads, isa.c_str(), &d));
        return Device(d);
    }

    /// Every option of qlinear_device_create_custom (host job system and allocator; the
    /// callbacks and contexts must outlive the device and every layer created on it).
    static Device custom(std::size_t threads, const char* isa, qlinear_job_run_fn run,
                         void* run_ctx, qlinear_alloc_fn alloc, qlinear_free_fn free,
                         void* alloc_ctx) {
        qlinear_device* d = nullptr;
        check(qlinear_device_create_custom(threads, isa, run, run_ctx, alloc, free, alloc_ctx,
                                           &d));
        return Device(d);
    }

    /// Whether this CPU can run the ISA path `isa`.
    static bool isa_available(const std::string& isa) {
        bool available = false;
        check(qlinear_isa_is_available(isa.c_str(), &available));
        return available;
    }

    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;
    Device(Device&&) noexcept = default;
    Device& operator=(Device&&) noexcept = default;
    ~Device() = default;

    /// Threads that may run one call's tasks at once.
    std::size_t threads() const {
        std::size_t n = 0;
        check(qlinear_device_threads(h_.get(), &n));
        return n;
    }
    /// The ISA path: "scalar", "avx2" or "avx512".
    std::string isa() const {
        const char* name = nullptr;
        check(qlinear_device_isa(h_.get(), &name));
        return name;
    }

    /// The C handle (still owned by this object); NULL once moved from.
    const qlinear_device* get() const noexcept { return h_.get(); }

private:
    using Handle = detail::Handle<qlinear_device, qlinear_device_free>;
    explicit Device(qlinear_device* d) noexcept : h_(d) {}
    Handle h_;
};

/// A quantization recipe. Setters return *this for chaining and throw on invalid values.
class QuantConfig {
public:
    /// INT8: symmetric, groups of 32, f16 scales chosen by an error search, exact activations.
    static QuantConfig int8() {
        qlinear_quant_config* c = nullptr;
        check(qlinear_quant_config_create_int8(&c));
        return QuantConfig(c);
    }
    /// The 4-bit default: the cb4 codebook, groups of 32, f16 scales chosen by an error
    /// search with a least-squares refit, exact activations.
    static QuantConfig int4() {
        qlinear_quant_config* c = nullptr;
        check(qlinear_quant_config_create_int4(&c));
        return QuantConfig(c);
    }
    /// Uniform 4-bit integer codes, otherwise as int4().
    static QuantConfig int4_uniform() {
        qlinear_quant_config* c = nullptr;
        check(qlinear_quant_config_create_int4_uniform(&c));
        return QuantConfig(c);
    }

    QuantConfig(const QuantConfig&) = delete;
    QuantConfig& operator=(const QuantConfig&) = delete;
    QuantConfig(QuantConfig&&) noexcept = default;
    QuantConfig& operator=(QuantConfig&&) noexcept = default;
    ~QuantConfig() = default;

    /// 8 (WeightFormat::Int8) or 4 (the uniform WeightFormat::Int4).
    QuantConfig& bits(std::uint32_t bits) {
        check(qlinear_quant_config_set_bits(h_.get(), bits));
        return *this;
    }
    QuantConfig& format(WeightFormat format) {
        check(qlinear_quant_config_set_format(h_.get(), static_cast<std::uint32_t>(format)));
        return *this;
    }
    /// Group-wise scales with a power-of-two group from 32 to 1024, or per-channel when 0.
    QuantConfig& group_size(std::size_t group_size) {
        check(qlinear_quant_config_set_group_size(h_.get(), group_size));
        return *this;
    }
    /// The granularity; `group_size` is used only for Granularity::Group.
    QuantConfig& granularity(Granularity g, std::size_t group_size = 0) {
        check(qlinear_quant_config_set_granularity(h_.get(), static_cast<std::uint32_t>(g),
                                                   group_size));
        return *this;
    }
    /// Symmetric (no zero points) or asymmetric.
    QuantConfig& symmetric(bool symmetric) {
        check(qlinear_quant_config_set_symmetric(h_.get(), symmetric));
        return *this;
    }
    QuantConfig& activation_mode(ActivationMode mode) {
        check(qlinear_quant_config_set_activation_mode(h_.get(),
                                                       static_cast<std::uint32_t>(mode)));
        return *this;
    }
    QuantConfig& scale_dtype(ScaleDtype dtype) {
        check(qlinear_quant_config_set_scale_dtype(h_.get(), static_cast<std::uint32_t>(dtype)));
        return *this;
    }
    /// The squared-error scale search (on by default).
    QuantConfig& search(bool search) {
        check(qlinear_quant_config_set_search(h_.get(), search));
        return *this;
    }

    /// The C handle (still owned by this object); NULL once moved from.
    qlinear_quant_config* get() const noexcept { return h_.get(); }

private:
    using Handle = detail::Handle<qlinear_quant_config, qlinear_quant_config_free>;
    explicit QuantConfig(qlinear_quant_config* c) noexcept : h_(c) {}
    Handle h_;
};

/// An f32 linear layer y = x·Wᵀ + b. Weights are row-major [out_features][in_features].
class Linear {
public:
    /// Copies `weights` (out·in values) and `bias` (out values, or empty for none).
    Linear(const Device& device, Span<const float> weights, std::size_t out_features,
           std::size_t in_features, Span<const float> bias = {}) {
        qlinear_linear* l = nullptr;
        check(qlinear_linear_create(device.get(), weights.data(), weights.size(), out_features,
                                    in_features, bias.empty() ? nullptr : bias.data(),
                                    bias.size(), &l));
        h_ = Handle(l);
        out_ = out_features;
        in_ = in_features;
    }

    Linear(const Linear&) = delete;
    Linear& operator=(const Linear&) = delete;
    Linear(Linear&&) noexcept = default;
    Linear& operator=(Linear&&) noexcept = default;
    ~Linear() = default;

    std::size_t out_features() const {
        std::size_t out = 0, in = 0;
        check(qlinear_linear_shape(h_.get(), &out, &in));
        return out;
    }
    std::size_t in_features() const {
        std::size_t out = 0, in = 0;
        check(qlinear_linear_shape(h_.get(), &out, &in));
        return in;
    }

    /// y = x·Wᵀ + b for `rows` rows (x has rows·in values); returns rows·out values.
    std::vector<float> forward(const float* x, std::size_t x_len, std::size_t rows) const {
        return detail::forward_vec(qlinear_linear_forward, h_.get(), in_, out_, x, x_len, rows);
    }
    std::vector<float> forward(Span<const float> x, std::size_t rows) const {
        return forward(x.data(), x.size(), rows);
    }
    std::vector<float> forward(const std::vector<float>& x, std::size_t rows) const {
        return forward(x.data(), x.size(), rows);
    }
    /// Writes rows·out values into `y` (written only on success).
    void forward_into(Span<const float> x, std::size_t rows, Span<float> y) const {
        check(qlinear_linear_forward(h_.get(), x.data(), rows, x.size(), y.data(), y.size()));
    }

    /// The C handle (still owned by this object); NULL once moved from.
    const qlinear_linear* get() const noexcept { return h_.get(); }

private:
    using Handle = detail::Handle<qlinear_linear, qlinear_linear_free>;
    Handle h_;
    std::size_t out_ = 0, in_ = 0;
};

/// The logical layout of a quantized layer (see qlinear_quantized_linear_from_parts): what
/// QuantizedLinear::parts() copies out and QuantizedLinear::from_parts() builds from.
struct QuantizedParts {
    std::size_t out_features = 0;
    std::size_t in_features = 0;
    std::uint32_t bits = 8;
    Granularity granularity = Granularity::Group;
    std::size_t group_size = 32;  ///< used only for Granularity::Group
    ScaleDtype scale_dtype = ScaleDtype::F32;
    ActivationMode activation_mode = ActivationMode::Exact;
    std::vector<std::uint8_t> codes;       ///< row-major; 4 bits: two per byte, low nibble first
    std::vector<float> scales;             ///< [out][groups per row]
    std::vector<std::int8_t> zero_points;  ///< one per scale; empty when symmetric
    /// cb4: the 16 levels 4-bit codes index (w = scale·codebook[q]); empty for integer codes.
    std::vector<std::int8_t> codebook;
    std::vector<float> bias;  ///< out values, or empty for none
};

/// A linear layer with INT8, INT4 or cb4 weights. forward may run on many threads at once.
class QuantizedLinear {
public:
    /// Quantizes f32 `weights` [out][in] with `config`; `bias` has `out` values or is empty.
    static QuantizedLinear quantize(const Device& device, Span<const float> weights,
                                    std::size_t out_features, std::size_t in_features,
                                    const QuantConfig& config, Span<const float> bias = {}) {
        qlinear_quantized_linear* q = nullptr;
        check(qlinear_quantized_linear_quantize(device.get(), weights.data(), weights.size(),
                                                out_features, in_features,
                                                bias.empty() ? nullptr : bias.data(), bias.size(),
                                                config.get(), &q));
        return QuantizedLinear(q);
    }

    /// Quantizes an f32 layer (weights, bias and device are taken from it).
    static QuantizedLinear from_linear(const Linear& linear, const QuantConfig& config) {
        qlinear_quantized_linear* q = nullptr;
        check(qlinear_quantized_linear_from_linear(linear.get(), config.get(), &q));
        return QuantizedLinear(q);
    }

    /// Builds a layer from raw quantized parts (copied). Empty vectors are passed as NULL; a
    /// non-empty codebook makes a cb4 layer.
    static QuantizedLinear from_parts(const Device& device, const QuantizedParts& p) {
        qlinear_quantized_linear* q = nullptr;
        if (!p.codebook.empty()) {
            if (p.bits != 4 || !p.zero_points.empty())
                throw Error(QLINEAR_ERR_INVALID_ARGUMENT,
                            "a codebook needs 4-bit codes and no zero points");
            check(qlinear_quantized_linear_from_codebook_parts(
                device.get(), p.out_features, p.in_features,
                static_cast<std::uint32_t>(p.granularity), p.group_size,
                static_cast<std::uint32_t>(p.scale_dtype),
                p.codes.empty() ? nullptr : p.codes.data(), p.codes.size(),
                p.scales.empty() ? nullptr : p.scales.data(), p.scales.size(),
                p.codebook.data(), p.codebook.size(), p.bias.empty() ? nullptr : p.bias.data(),
                p.bias.size(), static_cast<std::uint32_t>(p.activation_mode), &q));
            return QuantizedLinear(q);
        }
        check(qlinear_quantized_linear_from_parts(
            device.get(), p.out_features, p.in_features, p.bits,
            static_cast<std::uint32_t>(p.granularity), p.group_size,
            static_cast<std::uint32_t>(p.scale_dtype), p.codes.empty() ? nullptr : p.codes.data(),
            p.codes.size(), p.scales.empty() ? nullptr : p.scales.data(), p.scales.size(),
            p.zero_points.empty() ? nullptr : p.zero_points.data(), p.zero_points.size(),
            p.bias.empty() ? nullptr : p.bias.data(), p.bias.size(),
            static_cast<std::uint32_t>(p.activation_mode), &q));
        return QuantizedLinear(q);
    }

    /// The codes and scales lengths from_parts expects for a shape and recipe.
    static std::pair<std::size_t, std::size_t> layout_lengths(std::size_t out_features,
                                                              std::size_t in_features,
                                                              std::uint32_t bits,
                                                              Granularity granularity,
                                                              std::size_t group_size) {
        std::size_t codes = 0, scales = 0;
        check(qlinear_quantized_layout_lengths(out_features, in_features, bits,
                                               static_cast<std::uint32_t>(granularity),
                                               group_size, &codes, &scales));
        return {codes, scales};
    }

    QuantizedLinear(const QuantizedLinear&) = delete;
    QuantizedLinear& operator=(const QuantizedLinear&) = delete;
    QuantizedLinear(QuantizedLinear&&) noexcept = default;
    QuantizedLinear& operator=(QuantizedLinear&&) noexcept = default;
    ~QuantizedLinear() = default;

    std::size_t in_features() const {
        std::size_t v = 0;
        check(qlinear_quantized_linear_in_features(h_.get(), &v));
        return v;
    }
    std::size_t out_features() const {
        std::size_t v = 0;
        check(qlinear_quantized_linear_out_features(h_.get(), &v));
        return v;
    }
    /// 4 or 8.
    std::uint32_t bits() const {
        std::uint32_t v = 0;
        check(qlinear_quantized_linear_bits(h_.get(), &v));
        return v;
    }
    WeightFormat format() const {
        std::uint32_t v = 0;
        check(qlinear_quantized_linear_format(h_.get(), &v));
        return static_cast<WeightFormat>(v);
    }
    Granularity granularity() const {
        std::uint32_t v = 0;
        check(qlinear_quantized_linear_granularity(h_.get(), &v));
        return static_cast<Granularity>(v);
    }
    /// Inputs per group; 0 for per-channel and per-tensor scales.
    std::size_t group_size() const {
        std::size_t v = 0;
        check(qlinear_quantized_linear_group_size(h_.get(), &v));
        return v;
    }
    bool symmetric() const {
        bool v = false;
        check(qlinear_quantized_linear_symmetric(h_.get(), &v));
        return v;
    }
    ScaleDtype scale_dtype() const {
        std::uint32_t v = 0;
        check(qlinear_quantized_linear_scale_dtype(h_.get(), &v));
        return static_cast<ScaleDtype>(v);
    }
    ActivationMode activation_mode() const {
        std::uint32_t v = 0;
        check(qlinear_quantized_linear_activation_mode(h_.get(), &v));
        return static_cast<ActivationMode>(v);
    }
    /// Bytes of the quantized weight (codes, scales, zero points).
    std::size_t weight_bytes() const {
        std::size_t v = 0;
        check(qlinear_quantized_linear_weight_bytes(h_.get(), &v));
        return v;
    }
    /// Bytes saved versus f32 weights.
    std::size_t memory_saved() const {
        std::size_t v = 0;
        check(qlinear_quantized_linear_memory_savings_bytes(h_.get(), &v));
        return v;
    }

    /// Copies out the logical layout (codes, scales, zero points and the recipe). The C API
    /// cannot copy out the bias, so `bias` is left empty.
    QuantizedParts parts() const {
        QuantizedParts p;
        p.out_features = out_features();
        p.in_features = in_features();
        p.bits = bits();
        p.granularity = granularity();
        p.group_size = group_size();
        p.scale_dtype = scale_dtype();
        p.activation_mode = activation_mode();
        std::size_t codes = 0, scales = 0, zeros = 0;
        check(qlinear_quantized_linear_layout(h_.get(), &codes, &scales, &zeros));
        p.codes.resize(codes);
        p.scales.resize(scales);
        p.zero_points.resize(zeros);
        check(qlinear_quantized_linear_copy_codes(h_.get(), p.codes.data(), p.codes.size()));
        check(qlinear_quantized_linear_copy_scales(h_.get(), p.scales.data(), p.scales.size()));
        check(qlinear_quantized_linear_copy_zero_points(
            h_.get(), zeros ? p.zero_points.data() : nullptr, p.zero_points.size()));
        if (format() == WeightFormat::Cb4) {
            p.codebook.resize(16);
            check(qlinear_quantized_linear_copy_codebook(h_.get(), p.codebook.data(),
                                                         p.codebook.size()));
        }
        return p;
    }

    /// y = x·dequant(W)ᵀ + b for `rows` rows (x has rows·in values); returns rows·out values.
    std::vector<float> forward(const float* x, std::size_t x_len, std::size_t rows) const {
        return detail::forward_vec(qlinear_quantized_linear_forward, h_.get(), in_, out_, x,
                                   x_len, rows);
    }
    std::vector<float> forward(Span<const float> x, std::size_t rows) const {
        return forward(x.data(), x.size(), rows);
    }
    std::vector<float> forward(const std::vector<float>& x, std::size_t rows) const {
        return forward(x.data(), x.size(), rows);
    }
    /// Writes rows·out values into `y` (written only on success, except when a custom
    /// device's host job system breaks its contract: QLINEAR_ERR_INTERNAL, `y` partly
    /// written). No allocation.
    void forward_into(const float* x, std::size_t x_len, std::size_t rows, float* y,
                      std::size_t y_len) const {
        check(qlinear_quantized_linear_forward(h_.get(), x, rows, x_len, y, y_len));
    }
    void forward_into(Span<const float> x, std::size_t rows, Span<float> y) const {
        forward_into(x.data(), x.size(), rows, y.data(), y.size());
    }

    /// Forward with IEEE f16 activations (bit patterns).
    std::vector<std::uint16_t> forward_f16(Span<const std::uint16_t> x, std::size_t rows) const {
        return detail::forward_vec(qlinear_quantized_linear_forward_f16, h_.get(), in_, out_,
                                   x.data(), x.size(), rows);
    }
    /// Forward with bfloat16 activations (bit patterns).
    std::vector<std::uint16_t> forward_bf16(Span<const std::uint16_t> x, std::size_t rows) const {
        return detail::forward_vec(qlinear_quantized_linear_forward_bf16, h_.get(), in_, out_,
                                   x.data(), x.size(), rows);
    }

    /// The C handle (still owned by this object); NULL once moved from.
    const qlinear_quantized_linear* get() const noexcept { return h_.get(); }

private:
    friend class Model;
    using Handle = detail::Handle<qlinear_quantized_linear, qlinear_quantized_linear_free>;
    explicit QuantizedLinear(qlinear_quantized_linear* q) : h_(q) {
        in_ = in_features();
        out_ = out_features();
    }
    Handle h_;
    std::size_t out_ = 0, in_ = 0;
};

/// Named quantized layers loaded from a qlinear file (docs/FORMAT.md). Layers taken from a
/// model share its weights and stay valid after the model is destroyed.
class Model {
public:
    /// Loads a file; a missing file throws with QLINEAR_ERR_IO, a malformed one with
    /// QLINEAR_ERR_CORRUPT.
    static Model load(const std::string& path, const Device& device) {
        qlinear_model* m = nullptr;
        check(qlinear_model_load_file(path.c_str(), device.get(), &m));
        return Model(m);
    }

    /// Loads a file held in memory; the bytes are not kept after the call.
    static Model load_memory(Span<const std::uint8_t> bytes, const Device& device) {
        static const std::uint8_t empty = 0;
        qlinear_model* m = nullptr;
        check(qlinear_model_load_memory(bytes.data() != nullptr ? bytes.data() : &empty,
                                        bytes.size(), device.get(), &m));
        return Model(m);
    }

    using Named = std::vector<std::pair<std::string, const QuantizedLinear*>>;

    /// Saves `layers` (name, layer) in order to `path`, crash-safely: `path` holds either its
    /// old contents or the complete new file.
    static void save(const std::string& path, const Named& layers) {
        Arrays a(layers);
        check(qlinear_model_save_file(path.c_str(), a.handles.data(), a.names.data(),
                                      a.handles.size()));
    }

    /// The bytes `save` would write; `load_memory` reads them back bit for bit.
    static std::vector<std::uint8_t> save_memory(const Named& layers) {
        Arrays a(layers);
        std::uint8_t* p = nullptr;
        std::size_t n = 0;
        check(qlinear_model_save_memory(a.handles.data(), a.names.data(), a.handles.size(), &p,
                                        &n));
        std::vector<std::uint8_t> bytes(p, p + n);
        qlinear_bytes_free(p, n);
        return bytes;
    }

    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

private:
    /// The C arrays of handles and names the save functions take.
    struct Arrays {
        std::vector<const qlinear_quantized_linear*> handles;
        std::vector<const char*> names;
        explicit Arrays(const Named& layers) {
            for (const auto& [name, layer] : layers) {
                handles.push_back(layer != nullptr ? layer->get() : nullptr);
                names.push_back(name.c_str());
            }
        }
    };

public:
    Model(Model&&) noexcept = default;
    Model& operator=(Model&&) noexcept = default;
    ~Model() = default;

    /// Number of layers.
    std::size_t size() const {
        std::size_t n = 0;
        check(qlinear_model_layer_count(h_.get(), &n));
        return n;
    }

    /// Name of layer `i` in file order.
    std::string name(std::size_t i) const {
        const char* n = nullptr;
        check(qlinear_model_layer_name(h_.get(), i, &n));
        return n;
    }

    /// Every layer name, in file order.
    std::vector<std::string> names() const {
        std::vector<std::string> v;
        for (std::size_t i = 0, n = size(); i < n; ++i) v.push_back(name(i));
        return v;
    }

    /// The layer called `name` (shares the model's weights); throws INVALID_ARGUMENT if absent.
    QuantizedLinear layer(const std::string& name) const {
        qlinear_quantized_linear* q = nullptr;
        check(qlinear_model_get_layer(h_.get(), name.c_str(), &q));
        return QuantizedLinear(q);
    }

    /// The C handle (still owned by this object); NULL once moved from.
    const qlinear_model* get() const noexcept { return h_.get(); }

private:
    explicit Model(qlinear_model* m) noexcept : h_(m) {}
    detail::Handle<qlinear_model, qlinear_model_free> h_;
};

/// Quantizes f32 weights [out][in] (free-function spelling of QuantizedLinear::quantize).
inline QuantizedLinear quantize(const Device& device, Span<const float> weights,
                                std::size_t out_features, std::size_t in_features,
                                const QuantConfig& config, Span<const float> bias = {}) {
    return QuantizedLinear::quantize(device, weights, out_features, in_features, config, bias);
}

/// Quantizes an f32 layer (free-function spelling of QuantizedLinear::from_linear).
inline QuantizedLinear quantize(const Linear& linear, const QuantConfig& config) {
    return QuantizedLinear::from_linear(linear, config);
}

}  // namespace qlinear

#endif  // QLINEAR_HPP
